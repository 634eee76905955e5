"""The in-memory log ring: bounded, thread-safe, and never holding a secret."""

from __future__ import annotations

import logging
import threading

import pytest

from entrada.logring import MASK, LogRing, MaskSecrets, mask_secrets


@pytest.fixture
def logged():
    """A logger with a fresh ring of 5 lines attached (removed afterwards)."""
    ring = LogRing(5, fmt="%(levelname)s %(message)s")
    log = logging.getLogger("test.logring")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(ring)
    yield log, ring
    log.removeHandler(ring)
    log.propagate = True


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("login password=hunter2 user=bob", f"login password={MASK} user=bob"),
        ("Password: hunter2", f"Password: {MASK}"),
        ('{"password": "hun\\"ter2", "port": 1883}', f'{{"password": "{MASK}", "port": 1883}}'),
        ("mqtt_password='two words' ok", f"mqtt_password='{MASK}' ok"),
        ("GET /x?token=abc123&page=2", f"GET /x?token={MASK}&page=2"),
        ("api-key=1234, next", f"api-key={MASK}, next"),
        ("SECRET=s3cr3t", f"SECRET={MASK}"),
        ("mqtts://central:pa55@broker:8883/x", f"mqtts://central:{MASK}@broker:8883/x"),
        ("Authorization: Bearer abcdefgh.ijk", f"Authorization: Bearer {MASK}"),
        (f"password={MASK}", f"password={MASK}"),  # already masked stays so
        ("3 passes used, catalog v12", "3 passes used, catalog v12"),
    ],
)
def test_secrets_are_masked(line, masked):
    assert mask_secrets(line) == masked


def test_the_ring_keeps_the_newest_lines_masked(logged):
    log, ring = logged
    for n in range(8):
        log.info("line %d password=%s", n, f"pw{n}")

    assert ring.tail(100) == [f"INFO line {n} password={MASK}" for n in range(3, 8)]
    assert ring.tail(2) == [f"INFO line {n} password={MASK}" for n in (6, 7)]
    assert ring.tail(0) == []


def test_a_secret_in_a_traceback_is_masked_too(logged):
    log, ring = logged
    try:
        raise ValueError("bad login password=hunter2")
    except ValueError:
        log.exception("connect failed")

    (line,) = ring.tail()
    assert "Traceback" in line and "hunter2" not in line


def test_tail_filters_by_level(logged):
    log, ring = logged
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")

    assert ring.tail(10, "WARNING") == ["WARNING w", "ERROR e"]
    assert ring.tail(1, logging.INFO) == ["ERROR e"]
    with pytest.raises(ValueError, match="unknown log level"):
        ring.tail(10, "LOUD")


def test_a_long_line_is_cut(logged):
    log, _ = logged
    ring = LogRing(3, max_chars=100, fmt="%(message)s")
    log.addHandler(ring)
    try:
        log.info("x" * 1000)
    finally:
        log.removeHandler(ring)

    (line,) = ring.tail()
    assert len(line) <= 100 + len(" …[916 more]")
    assert line.endswith("…[916 more]")


def test_a_record_that_cannot_be_formatted_does_not_raise(logged, capsys):
    log, ring = logged
    bad = logging.LogRecord("x", logging.INFO, __file__, 1, "%d things", ("many",), None)
    ring.handle(bad)  # logging reports it on stderr and goes on
    log.info("after")

    assert ring.tail() == ["INFO after"]
    assert "Logging error" in capsys.readouterr().err


def test_many_threads_log_while_the_tail_is_read(logged):
    log, ring = logged
    ring = LogRing(50, fmt="%(message)s")
    log.addHandler(ring)
    start = threading.Barrier(5)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        start.wait()
        for n in range(500):
            log.info("w%d-%d", k, n)

    def reader() -> None:
        start.wait()
        try:
            for _ in range(500):
                assert len(ring.tail(50)) <= 50
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=reader))
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        log.removeHandler(ring)

    assert errors == []
    lines = ring.tail(1000)
    assert len(lines) == 50
    assert {line.split("-")[0] for line in lines} <= {"w0", "w1", "w2", "w3"}


def test_the_filter_masks_a_record_before_any_handler():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s ok", ("abc",), None)
    assert MaskSecrets().filter(record) is True
    assert record.getMessage() == f"token={MASK} ok"


def test_a_ring_needs_room():
    with pytest.raises(ValueError):
        LogRing(0)
