"""The display board against a real Mosquitto, drawn off screen (SDL's dummy driver) and
announced through the simulated sound output, driven frame by frame with
:meth:`DisplayRuntime.step` on the test's thread (pygame's main thread), with a plain
MQTT client in central's place (tests/controller/queue_rig.py)."""

import threading

import pytest
from queue_rig import WAIT, DisplayRig, FakeCentral, call, display_config

from controller.daemon import build_runtime
from controller.display_runtime import DisplayRuntime, FrameHooks
from controller.store import DeviceStore
from drivers.sound_sim import SimSound
from entrada.codes import Fault
from entrada.protocol_queue import CALL_SHOWN
from kiosk_ui.announcer import GAP_SECONDS

A042 = [
    "chime.wav",
    "letter_a.wav",
    "digit_0.wav",
    "digit_4.wav",
    "digit_2.wav",
    "pause.wav",
    "word_counter.wav",
    "number_3.wav",
]
B007 = [
    "chime.wav",
    "letter_b.wav",
    "digit_0.wav",
    "digit_0.wav",
    "digit_7.wav",
    "pause.wav",
    "word_counter.wav",
    "number_5.wav",
]


@pytest.fixture
def central(broker):
    c = FakeCentral(broker.port)
    c.set_online(True)
    yield c
    c.close()


@pytest.fixture
def make(tmp_path, broker):
    """Start a board (same data_dir every time: a second one is a reboot)."""
    rigs = []

    def make(sound=True, **display):
        cfg = display_config(tmp_path, broker.port, display, sound="sim" if sound else "none")
        rig = DisplayRig(cfg, SimSound() if sound else None)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


def shown(central, n=1):
    """Wait-predicate: ``n`` call confirmations stored by central."""
    return lambda: len(found := central.events_of(CALL_SHOWN)) >= n and found


def clips(rig):
    return [play.clip.name for play in rig.sound.plays]


def test_a_call_is_drawn_announced_and_confirmed_once(central, make):
    central.publish_board((call("k1", "A042", "3"),))
    rig = make()

    [event] = rig.until(shown(central))

    assert "A042" in rig.drawn_texts() and "→ 3" in rig.drawn_texts()
    assert clips(rig) == A042
    assert {k: event[k] for k in ("call_id", "recall", "ticket", "counter", "announced")} == {
        "call_id": "k1",
        "recall": 0,
        "ticket": "A042",
        "counter": "3",
        "announced": True,
    }
    assert event["shown_at"] <= event["confirmed_at"]
    # the same call on a newer board is neither announced nor confirmed again
    seq = central.publish_board((call("k1", "A042", "3"),)).seq
    rig.until(lambda: rig.rt.board.seq == seq)
    rig.until(lambda: rig.rt.store.outbox_depth() == 0)
    assert rig.rt.hooks.keys_shown == ["k1|0"]
    assert clips(rig) == A042
    assert len(central.events_of(CALL_SHOWN)) == 1


def test_two_calls_are_announced_one_after_the_other(central, make):
    central.publish_board((call("k1", "A042", "3"), call("k2", "B007", "5")))
    rig = make()

    events = rig.until(shown(central, 2))

    assert sorted(e["call_id"] for e in events) == ["k1", "k2"]
    assert clips(rig) in (A042 + B007, B007 + A042)
    plays = rig.sound.plays
    assert rig.sound.overlaps == 0 and rig.sound.stops == 0
    assert plays[8].started - plays[7].ends >= GAP_SECONDS
    assert all(e["announced"] for e in events)


def test_a_recall_is_shown_announced_and_confirmed_again(central, make):
    central.publish_board((call("k1", "A042", "3"),))
    rig = make()
    rig.until(shown(central))

    central.publish_board((call("k1", "A042", "3", recall=1),))
    events = rig.until(shown(central, 2))

    assert [(e["call_id"], e["recall"]) for e in events] == [("k1", 0), ("k1", 1)]
    assert clips(rig) == A042 + A042
    assert rig.rt.hooks.keys_shown == ["k1|0", "k1|1"]


def test_a_rebooted_board_does_not_confirm_or_announce_a_call_again(central, make):
    central.publish_board((call("k1", "A042", "3"),))
    first = make()
    first.until(shown(central))
    first.until(lambda: first.rt.store.outbox_depth() == 0)
    first.close()

    again = make()  # same data_dir; the retained board is read at once
    again.until(lambda: again.rt.board is not None)

    assert "A042" in again.drawn_texts()
    assert again.rt.hooks.keys_shown == [] and again.sound.plays == []
    # a new call on the rebooted board is announced as usual, the old one still not
    central.publish_board((call("k2", "A043", "3"), call("k1", "A042", "3")))
    events = again.until(shown(central, 2))
    assert [e["call_id"] for e in events] == ["k1", "k2"]
    assert again.rt.hooks.keys_shown == ["k2|0"]


def test_an_older_board_arriving_late_is_ignored(central, make):
    newer = central.publish_board((call("k1", "A042", "3"),), seq=5)
    rig = make()
    rig.until(lambda: rig.rt.board is not None and rig.rt.board.seq == 5)

    central.publish_board((call("k9", "B099", "4"),), seq=4, ts=newer.ts - 10, retain=False)
    central.publish_board((call("k1", "A042", "3"),), seq=6)  # a marker behind it
    rig.until(lambda: rig.rt.board.seq == 6)

    assert rig.rt.counters.boards == 2
    assert "k9|0" not in rig.rt.hooks.keys_shown
    assert "B099" not in rig.drawn_texts()


@pytest.mark.parametrize("setup", ["no sound driver", "announce off"])
def test_without_announcements_a_call_is_confirmed_once_drawn(central, make, setup):
    rig = make(sound=False) if setup == "no sound driver" else make(announce=False)
    central.publish_board((call("k1", "A042", "3"),))

    [event] = rig.until(shown(central))

    assert (event["call_id"], event["announced"]) == ("k1", False)
    assert "A042" in rig.drawn_texts()
    assert rig.sound is None or rig.sound.plays == []


def test_a_failing_sound_device_still_confirms_and_is_reported(central, make):
    rig = make()
    rig.sound.failing = True
    central.publish_board((call("k1", "A042", "3"),))

    [event] = rig.until(shown(central))

    assert event["announced"] is False
    assert Fault.SOUND_DOWN in rig.rt.faults
    rig.until(lambda: Fault.SOUND_DOWN in (central.last_status(rig.device_id).faults or ()))
    # the device comes back: the next call plays, and the fault clears
    rig.sound.failing = False
    central.publish_board((call("k2", "B007", "5"), call("k1", "A042", "3")))
    events = rig.until(shown(central, 2))
    assert (events[1]["call_id"], events[1]["announced"]) == ("k2", True)
    assert clips(rig) == B007
    rig.until(lambda: Fault.SOUND_DOWN not in central.last_status(rig.device_id).faults)


def test_a_rebuilt_store_keeps_confirming_calls(central, make):
    rig = make(sound=False)
    rig.until(lambda: rig.rt.online)
    rig.rt._recover_store("test: corrupt")  # what the owner loop does on a DatabaseError

    central.publish_board((call("k1", "A042", "3"),))

    [event] = rig.until(shown(central))
    assert event["call_id"] == "k1"


def test_run_draws_frames_until_stopped(tmp_path, broker, central):
    central.publish_board((call("k1", "A042", "3"),))
    cfg = display_config(tmp_path, broker.port)

    def on_frame(board, _mono):
        if board is not None:
            rt.request_stop("seen the board")

    rt = DisplayRuntime(
        cfg, DeviceStore(cfg.device.data_dir / "device.db"), None, hooks=FrameHooks(on_frame)
    )
    guard = threading.Timer(WAIT, rt.request_stop, ("the board never came",))
    guard.start()
    try:
        rt.run()  # on this (main) thread, as the daemon does
    finally:
        guard.cancel()

    assert rt.stopping and rt.counters.frames >= 1
    assert rt.hooks.keys_shown == ["k1|0"] and rt.counters.confirmed == 1


def test_the_daemon_builds_a_display_with_simulated_sound(tmp_path, broker):
    cfg = display_config(tmp_path, broker.port)

    rt, channel = build_runtime(cfg)

    try:
        assert isinstance(rt, DisplayRuntime)
        assert isinstance(rt.sound, SimSound)
        assert channel is not None and "sound" in channel.simulators
    finally:
        rt.store.close()
        rt.close_drivers()
