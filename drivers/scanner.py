"""What a barcode/QR scanner can do: hand over each code it reads.

A dispenser uses one for appointment check-in: the customer holds the code of their booking
(printed, or a QR on a phone) under the scanner. The scanner runs its own thread (a serial
port's reader) and passes each code to the callback given to :meth:`Scanner.start`; the
callback only enqueues. Codes are normalised here, once, for every implementation
(:func:`normalise_code`): surrounding blanks stripped, upper case. What cannot be a code
(empty, control or non-ASCII characters, over-long) is junk: a driver logs and drops it.
Whether a code is a check-in code is the dispenser's business, not the scanner's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, runtime_checkable

#: Called from the scanner's own thread with a normalised code.
CodeCallback = Callable[[str], None]

#: Longest code kept; anything longer is junk (a check-in code is 4-12 characters).
MAX_CODE = 64
#: Printable ASCII without blanks: what a scanner's keyboard-style output of a code is.
_CODE = re.compile(rf"[\x21-\x7e]{{1,{MAX_CODE}}}")


def normalise_code(text: str) -> str:
    """``" abc123\\r"`` -> ``"ABC123"``; ValueError (saying why) if it cannot be a code."""
    code = text.strip()
    if not code:
        raise ValueError("an empty line")
    if len(code) > MAX_CODE:
        raise ValueError(f"{len(code)} characters (at most {MAX_CODE})")
    if not _CODE.fullmatch(code):
        raise ValueError("blanks, control or non-ASCII characters")
    return code.upper()


@runtime_checkable
class Scanner(Protocol):
    name: str

    def start(self, on_code: CodeCallback) -> None:
        """Begin reading; returns at once."""

    def stop(self) -> None:
        """Stop reading and release the device; safe to call twice."""

    def close(self) -> None:
        """Stop for good (the device's shutdown); safe to call twice."""
