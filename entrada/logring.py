"""The last lines a process logged, kept in memory for the technicians' ``logs`` command.

:class:`LogRing` is a :class:`logging.Handler` next to the one writing to stderr (the
journal keeps everything; the ring lets ``entrada tech logs DEVICE`` show the recent part
without a login on the device). It is bounded twice: at most ``capacity`` records, each
cut to ``max_chars``. Any thread may log; :meth:`LogRing.tail` may be called from any
thread too.

Secrets never enter it: every line passes :func:`mask_secrets`, which hides the value of
anything that looks like ``password=...``, ``"token": "..."``, ``user:pass@`` in a URL or
an ``Authorization: Bearer ...`` header. :class:`MaskSecrets` does the same as a logging
filter, for handlers that write elsewhere.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque

#: As :func:`entrada.logutil.configure` writes to stderr.
DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "********"

_SENSITIVE_FIELD = (
    r"[\w.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|private[_-]?key"
    r"|psk|credentials?)[\w.-]*"
)
#: ``key=value``, ``key: value``, ``"key": "value"`` with a secret-looking key.
_PAIR = re.compile(
    rf"""(?P<key>["']?{_SENSITIVE_FIELD}["']?\s*[=:]\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s,;&)}\]]+)""",
    re.IGNORECASE,
)
#: ``scheme://user:password@host``
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s/@]+@", re.IGNORECASE)
#: ``Authorization: Bearer abc...`` (the key rule does not catch it: no secret word)
_AUTH_SCHEME = re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)


def _mask_pair(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match['key']}{quote}{MASK}{quote}"


def mask_secrets(text: str) -> str:
    """``text`` with the values of secret-looking fields replaced by ``********``."""
    text = _PAIR.sub(_mask_pair, text)
    text = _URL_CREDENTIALS.sub(rf"\g<1>{MASK}@", text)
    return _AUTH_SCHEME.sub(rf"\g<1> {MASK}", text)


class MaskSecrets(logging.Filter):
    """Masks secrets in a record's message before a handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


class LogRing(logging.Handler):
    """The newest ``capacity`` formatted records, secrets masked, each at most
    ``max_chars`` long (a traceback stays with its record)."""

    def __init__(
        self,
        capacity: int = 1000,
        *,
        max_chars: int = 2000,
        level: int = logging.NOTSET,
        fmt: str = DEFAULT_FORMAT,
    ) -> None:
        if capacity < 1 or max_chars < 80:
            raise ValueError("a log ring holds at least one line of at least 80 characters")
        super().__init__(level)
        self.setFormatter(logging.Formatter(fmt))
        self.capacity = capacity
        self.max_chars = max_chars
        self._lines: deque[tuple[int, str]] = deque(maxlen=capacity)
        self._ring_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = mask_secrets(self.format(record))
        except Exception:  # noqa: BLE001 - a log handler never raises (logging's contract)
            self.handleError(record)
            return
        if len(line) > self.max_chars:
            cut = len(line) - self.max_chars + 16
            line = f"{line[: self.max_chars - 16]} …[{cut} more]"
        with self._ring_lock:
            self._lines.append((record.levelno, line))

    def tail(self, lines: int = 100, level: str | int | None = None) -> list[str]:
        """The newest ``lines`` lines (oldest first), at or above ``level`` if given."""
        floor = logging.NOTSET if level is None else _level_number(level)
        with self._ring_lock:
            kept = [text for levelno, text in self._lines if levelno >= floor]
        return kept[-lines:] if lines > 0 else []

    def clear(self) -> None:
        with self._ring_lock:
            self._lines.clear()


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number
