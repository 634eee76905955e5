"""Leased number blocks: a number is used once, only when its ticket is recorded, and the
cursors live in the device store (they outlive a restart)."""

import pytest

from controller.leases import Block, LeaseBook
from controller.store import DeviceStore

DAY, DAY2 = "2025-03-10", "2025-03-11"


@pytest.fixture
def store(tmp_path):
    s = DeviceStore(tmp_path / "device.db")
    yield s
    s.close()


@pytest.fixture
def book(store):
    return LeaseBook(store.conn)


def test_an_empty_book_has_no_number(book):
    assert book.next_number("A", DAY) is None
    assert book.left("A", DAY) == 0
    assert book.blocks() == []


def test_a_block_is_kept_once(book):
    assert book.add("A", DAY, 500, 509) is True
    assert book.add("A", DAY, 500, 509) is False  # the same reply again
    assert book.blocks() == [Block("A", DAY, 500, 509, 500)]
    assert book.left("A", DAY) == 10


def test_next_number_only_looks_and_use_moves_the_cursor(book):
    book.add("A", DAY, 500, 509)

    assert book.next_number("A", DAY) == 500
    assert book.next_number("A", DAY) == 500  # a failed print consumed nothing
    book.use("A", DAY, 500)

    assert book.next_number("A", DAY) == 501
    assert book.left("A", DAY) == 9


def test_only_the_next_number_can_be_used(book):
    book.add("A", DAY, 500, 509)
    with pytest.raises(ValueError, match="not next"):
        book.use("A", DAY, 501)
    with pytest.raises(ValueError, match="not next"):
        book.use("B", DAY, 500)
    assert book.next_number("A", DAY) == 500


def test_blocks_are_used_up_in_order_then_the_next_block_serves(book):
    book.add("A", DAY, 600, 601)
    book.add("A", DAY, 500, 501)
    issued = []
    while (n := book.next_number("A", DAY)) is not None:
        book.use("A", DAY, n)
        issued.append(n)

    assert issued == [500, 501, 600, 601]
    assert book.left("A", DAY) == 0
    with pytest.raises(ValueError, match="not next"):
        book.use("A", DAY, 602)


def test_services_and_days_are_separate(book):
    book.add("A", DAY, 500, 504)
    book.add("B", DAY, 500, 502)
    book.add("A", DAY2, 100, 109)
    book.use("A", DAY, 500)

    assert (book.left("A", DAY), book.left("B", DAY), book.left("A", DAY2)) == (4, 3, 10)
    assert book.next_number("B", DAY) == 500
    assert book.next_number("A", DAY2) == 100
    assert [(b.service, b.business_day) for b in book.blocks()] == [
        ("A", DAY),
        ("B", DAY),
        ("A", DAY2),
    ]


def test_a_use_rolled_back_with_its_ticket_leaves_the_number(store, book):
    book.add("A", DAY, 500, 509)

    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.emit(store.stream_name("dispenser"), "queue.ticket_printed", 1.0, {"n": 500})
        book.use("A", DAY, 500)
        raise RuntimeError("the event could not be written")

    assert book.next_number("A", DAY) == 500
    assert store.outbox_depth() == 0


def test_a_use_committed_with_its_ticket_moves_the_cursor(store, book):
    book.add("A", DAY, 500, 509)

    with store.transaction() as tx:
        tx.emit(store.stream_name("dispenser"), "queue.ticket_printed", 1.0, {"n": 500})
        book.use("A", DAY, 500)

    assert book.next_number("A", DAY) == 501
    assert store.outbox_depth() == 1


def test_cursors_outlive_a_restart(tmp_path):
    store = DeviceStore(tmp_path / "device.db")
    book = LeaseBook(store.conn)
    book.add("A", DAY, 500, 509)
    book.use("A", DAY, 500)
    book.use("A", DAY, 501)
    store.close()

    reopened = DeviceStore(tmp_path / "device.db")
    try:
        assert LeaseBook(reopened.conn).next_number("A", DAY) == 502
    finally:
        reopened.close()


def test_blocks_of_days_gone_are_forgotten(book):
    book.add("A", "2025-03-09", 1, 10)
    book.add("A", DAY, 500, 509)
    book.add("B", DAY2, 100, 109)

    assert book.forget_before(DAY) == 1

    assert [b.business_day for b in book.blocks()] == [DAY, DAY2]
    assert book.forget_before(DAY) == 0


def test_a_block_knows_what_is_left():
    assert Block("A", DAY, 500, 509, 500).left == 10
    assert Block("A", DAY, 500, 509, 510).left == 0
