"""One warning per key per interval, with a count of the ones held back."""

from __future__ import annotations

import logging
import sys
import types

import pytest

from entrada import logutil
from entrada.logutil import ThrottledLog

LOGGER = "entrada.test.ratelimited"


@pytest.fixture
def clock(monkeypatch) -> types.SimpleNamespace:
    now = types.SimpleNamespace(t=1000.0)
    monkeypatch.setattr(logutil, "time", types.SimpleNamespace(monotonic=lambda: now.t))
    return now


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([(0, "a")], ["bad a"]),
        ([(0, "a"), (1, "a"), (9.9, "a")], ["bad a"]),
        ([(0, "a"), (1, "a"), (10, "a")], ["bad a", "bad a (and 1 more like it)"]),
        ([(0, "a"), (1, "a"), (2, "a"), (30, "a")], ["bad a", "bad a (and 2 more like it)"]),
        ([(0, "a"), (10, "a"), (20, "a")], ["bad a", "bad a", "bad a"]),
        ([(0, "a"), (1, "b"), (2, "a"), (3, "b")], ["bad a", "bad b"]),
        (
            [(0, "a"), (5, "a"), (10, "a"), (15, "a"), (20, "a")],
            ["bad a", "bad a (and 1 more like it)", "bad a (and 1 more like it)"],
        ),
    ],
)
def test_rate_limited_warning(caplog, clock, calls, expected):
    limited = ThrottledLog(logging.getLogger(LOGGER), interval=10.0)
    caplog.set_level(logging.WARNING, logger=LOGGER)

    for t, key in calls:
        clock.t = 1000.0 + t
        limited.warning(key, "bad %s", key)

    assert [r.getMessage() for r in caplog.records] == expected
    assert {r.levelno for r in caplog.records} == {logging.WARNING}


def test_args_stay_lazy(caplog, clock):
    limited = ThrottledLog(logging.getLogger(LOGGER), interval=1.0)
    caplog.set_level(logging.WARNING, logger=LOGGER)

    limited.warning("k", "%s took %d%%", "poll", 50)
    limited.warning("k", "%s took %d%%", "poll", 60)
    clock.t += 1
    limited.warning("k", "%s took %d%%", "poll", 70)

    assert [r.args for r in caplog.records] == [("poll", 50), ("poll", 70, 1)]
    assert caplog.records[1].getMessage() == "poll took 70% (and 1 more like it)"


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("level", "expected"),
    [("DEBUG", logging.DEBUG), ("ERROR", logging.ERROR), ("NOPE", logging.INFO)],
)
def test_configure_logs_to_stderr(root_logging, level, expected):
    logutil.configure(level)

    (handler,) = root_logging.handlers
    assert root_logging.level == expected
    assert handler.stream is sys.stderr
