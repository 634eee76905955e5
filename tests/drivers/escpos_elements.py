"""What a printer puts on paper, as the ESC/POS decoder (escpos_decode.py) reports it.

:class:`Decoded` is the list of elements one byte stream printed, in order: text runs
with the style they print in (:class:`Text`, :class:`Style`), line feeds, paper feeds
and the cut, native QR codes (:class:`QrCode`, with the payload the printer stored),
raster and column images (:class:`RasterImage`, whose :meth:`~RasterImage.qr_modules`
reads a software QR code back into its module matrix), barcodes, real-time status
queries and any other recognised command by name. Its properties group them for tests:
printed lines, text, images, QR codes, cuts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DecodeError(ValueError):
    """The bytes are not ESC/POS this decoder understands (offset in the message)."""


@dataclass(frozen=True)
class Style:
    bold: bool = False
    underline: int = 0
    align: str = "left"
    #: Character size multipliers (ESC ! double width/height, GS ! 1 to 8).
    width: int = 1
    height: int = 1
    font: int = 0
    invert: bool = False
    flip: bool = False
    smooth: bool = False
    double_strike: bool = False


@dataclass(frozen=True)
class Text:
    """Characters printed in one style (never contains a line feed)."""

    text: str
    style: Style


@dataclass(frozen=True)
class LineFeed:
    pass


@dataclass(frozen=True)
class Init:
    """``ESC @``: the printer is reset."""


@dataclass(frozen=True)
class CodePage:
    number: int
    encoding: str


@dataclass(frozen=True)
class Feed:
    """``ESC d n`` (lines) or ``ESC J n`` (dots): prints the line and feeds."""

    lines: int = 0
    dots: int = 0


@dataclass(frozen=True)
class Cut:
    partial: bool
    #: Extra feed (in motion units) before the cut, for ``GS V 65/66 n``.
    feed: int = 0


@dataclass(frozen=True)
class QrCode:
    payload: bytes
    model: str
    module_size: int
    ec: str
    align: str

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")


@dataclass(frozen=True)
class RasterImage:
    """A bit image: ``width`` x ``height`` dots, rows of ``ceil(width / 8)`` bytes, MSB
    first, a set bit is black."""

    width: int
    height: int
    data: bytes
    command: str  # "GS v 0", "GS ( L", "ESC *"
    align: str
    density: int = 0

    @property
    def row_bytes(self) -> int:
        return (self.width + 7) // 8

    def black(self, x: int, y: int) -> bool:
        byte = self.data[y * self.row_bytes + x // 8]
        return bool(byte >> (7 - x % 8) & 1)

    def bbox(self) -> tuple[int, int, int, int] | None:
        """(left, top, right, bottom) of the black dots, right/bottom exclusive."""
        xs, ys = [], []
        for y in range(self.height):
            row = self.data[y * self.row_bytes : (y + 1) * self.row_bytes]
            if not any(row):
                continue
            ys.append(y)
            xs.extend(x for x in range(self.width) if self.black(x, y))
        if not xs:
            return None
        return min(xs), min(ys), max(xs) + 1, max(ys) + 1

    def qr_modules(self) -> list[list[bool]]:
        """The module matrix of the QR code drawn in this image (no quiet zone).

        The module size is found from the top-left finder pattern (7 modules wide), and
        each module is read at its centre."""
        box = self.bbox()
        if box is None:
            raise DecodeError("the image is blank: no QR code")
        left, top, right, bottom = box
        run = 0
        while left + run < right and self.black(left + run, top):
            run += 1
        if run % 7:
            raise DecodeError(f"no QR finder pattern at ({left}, {top}): run of {run} dots")
        size = run // 7
        count = (right - left) // size
        if (right - left) % size or (bottom - top) != (right - left):
            raise DecodeError("the black area is not a square of whole modules")
        return [
            [
                self.black(left + c * size + size // 2, top + r * size + size // 2)
                for c in range(count)
            ]
            for r in range(count)
        ]


@dataclass(frozen=True)
class Barcode:
    system: str
    data: bytes
    height: int
    module_width: int
    hri: int
    align: str


@dataclass(frozen=True)
class StatusQuery:
    """``DLE EOT n`` (real-time status request)."""

    n: int


@dataclass(frozen=True)
class Command:
    """Any other recognised command, by name, with its argument bytes."""

    name: str
    args: bytes = b""


@dataclass(frozen=True)
class Line:
    """One printed line of text runs (what ends with a line feed, a feed or a cut)."""

    runs: tuple[Text, ...]

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.runs)

    @property
    def style(self) -> Style:
        return self.runs[0].style if self.runs else Style()


@dataclass
class Decoded:
    elements: list[Any] = field(default_factory=list)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.elements if isinstance(e, kind)]

    @property
    def lines(self) -> list[Line]:
        """Every text line, empty ones included, in print order."""
        lines: list[Line] = []
        runs: list[Text] = []
        for e in self.elements:
            if isinstance(e, Text):
                runs.append(e)
            elif isinstance(e, LineFeed | Feed | Cut) or (
                isinstance(e, QrCode | RasterImage | Barcode) and runs
            ):
                if runs or isinstance(e, LineFeed):
                    lines.append(Line(tuple(runs)))
                runs = []
        if runs:
            lines.append(Line(tuple(runs)))
        return lines

    @property
    def text_lines(self) -> list[str]:
        return [line.text for line in self.lines if line.text.strip()]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def line_with(self, part: str) -> Line:
        """The first line containing ``part``; AssertionError listing the lines if none."""
        for line in self.lines:
            if part in line.text:
                return line
        raise AssertionError(f"no line contains {part!r}; lines: {self.text_lines}")

    @property
    def qr_codes(self) -> list[QrCode]:
        return self.of(QrCode)

    @property
    def images(self) -> list[RasterImage]:
        return self.of(RasterImage)

    @property
    def barcodes(self) -> list[Barcode]:
        return self.of(Barcode)

    @property
    def cuts(self) -> list[Cut]:
        return self.of(Cut)

    @property
    def ends_with_cut(self) -> bool:
        return bool(self.elements) and isinstance(self.elements[-1], Cut)
