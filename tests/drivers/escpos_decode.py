"""A test instrument: walks ESC/POS bytes back into what the printer would put on paper.

:func:`decode` reads the byte stream the way an Epson-compatible printer does and returns
a :class:`Decoded` list of elements (they are defined in escpos_elements.py and importable
from here): text runs with the style they print in (bold, underline, alignment, character
size from ``ESC !`` and ``GS !``, font, inversion), line feeds, native QR codes
(``GS ( k``: model, module size, error correction and the stored payload, reported when
the print function comes), raster images (``GS v 0`` and ``GS ( L`` graphics, with their
size and bits, and :meth:`RasterImage.qr_modules` to read a software QR code back into
its module matrix), column images (``ESC *``), barcodes (``GS k`` with the ``GS h/w/H/f``
settings), paper feeds, the cut (``GS V``) and real-time status queries (``DLE EOT``).

Text is decoded with the code page selected by ``ESC t n``, looked up in the printer
profile's table from python-escpos's capabilities; bytes above 0x7F go through Python's
own codec for that code page when there is one (an independent check of escpos's
encoding), else through escpos's table.

It is strict: an unknown command, a truncated one or a stray control byte raises
:class:`DecodeError` with its offset, so a test notices bytes it did not expect.
"""

from __future__ import annotations

import codecs
from dataclasses import replace
from typing import Any

from escpos_elements import (
    Barcode,
    CodePage,
    Command,
    Cut,
    Decoded,
    DecodeError,
    Feed,
    Init,
    Line,
    LineFeed,
    QrCode,
    RasterImage,
    StatusQuery,
    Style,
    Text,
)

__all__ = [
    "ALIGNS",
    "BARCODES",
    "QR_EC",
    "QR_MODELS",
    "Barcode",
    "CodePage",
    "Command",
    "Cut",
    "DecodeError",
    "Decoded",
    "Feed",
    "Init",
    "Line",
    "LineFeed",
    "QrCode",
    "RasterImage",
    "StatusQuery",
    "Style",
    "Text",
    "decode",
]

ESC, GS, DLE, FS = 0x1B, 0x1D, 0x10, 0x1C
LF, CR, HT, NUL = 0x0A, 0x0D, 0x09, 0x00

ALIGNS = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
QR_MODELS = {49: "1", 50: "2", 51: "micro"}
QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}
_BARCODE_NAMES = ("UPC-A", "UPC-E", "EAN13", "EAN8", "CODE39", "ITF", "CODABAR")
_DATABAR = ("OMNIDIRECTIONAL", "TRUNCATED", "LIMITED", "EXPANDED")
_BARCODE_B_ONLY = ("CODE93", "CODE128", "GS1-128", *(f"GS1 DATABAR {d}" for d in _DATABAR))
#: GS k m: function A (m 0-6, NUL-terminated) and function B (m 65-78, with a length).
BARCODES = {
    **dict(enumerate(_BARCODE_NAMES)),
    **dict(enumerate(_BARCODE_NAMES + _BARCODE_B_ONLY, start=65)),
}
# ESC commands with a fixed number of argument bytes and no effect on what we track.
_ESC_PLAIN = {
    ord(" "): 1,  # right-side character spacing
    ord("$"): 2,  # absolute print position
    ord("\\"): 2,  # relative print position
    ord("%"): 1,  # user-defined characters on/off
    ord("3"): 1,  # line spacing n/180
    ord("+"): 1,  # line spacing n/360
    ord("A"): 1,  # line spacing n/60
    ord("2"): 0,  # default line spacing
    ord("R"): 1,  # international character set
    ord("r"): 1,  # colour
    ord("c"): 2,  # ESC c 3/4/5 n: paper sensors, panel buttons
    ord("="): 1,  # select peripheral device
    ord("p"): 3,  # cash drawer pulse
    ord("B"): 2,  # buzzer
    ord("U"): 1,  # unidirectional printing
    ord("V"): 1,  # 90 degree rotation
    ord("T"): 1,  # print direction in page mode
    ord("L"): 0,  # page mode
    ord("S"): 0,  # standard mode
    ord("i"): 0,  # partial cut (legacy)
    ord("m"): 0,  # partial cut (legacy)
    ord("<"): 0,  # return home
}
_GS_PLAIN = {
    ord("L"): 2,  # left margin
    ord("W"): 2,  # print area width
    ord("P"): 2,  # motion units
    ord("a"): 1,  # automatic status back
    ord("I"): 1,  # transmit printer id
    ord("r"): 1,  # transmit status
    ord("|"): 1,  # print density
    ord("$"): 2,  # vertical position in page mode
    ord("\\"): 2,  # relative vertical position in page mode
}


# --------------------------------------------------------------------- code pages


def _profile_code_pages(profile: str) -> dict[int, str]:
    from drivers.ticket_escpos import load_escpos

    load_escpos()  # escpos's first import, the way the drivers make it
    from escpos.capabilities import CAPABILITIES

    pages = CAPABILITIES["profiles"][profile]["codePages"]
    return {int(k): v for k, v in pages.items()}


def _decoder(encoding: str) -> Any:
    """A bytes -> str function for code page ``encoding`` (Python's codec if it has one)."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        codec = None
    if codec is not None:
        return lambda raw: raw.decode(codec.name, errors="replace")
    from escpos.magicencode import Encoder

    try:
        table = Encoder._get_codepage_char_list(encoding)
    except (KeyError, LookupError):
        table = ["\ufffd"] * 128
    return lambda raw: "".join(chr(b) if b < 128 else table[b - 128] for b in raw)


# ------------------------------------------------------------------------ decoder


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError(f"{what} cut short at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def word(self, what: str) -> int:
        low, high = self.take(2, what)
        return low + 256 * high


class _Decoder:
    def __init__(self, profile: str) -> None:
        self.pages = _profile_code_pages(profile)
        self.out = Decoded()
        self.init()

    def init(self) -> None:
        self.style = Style()
        self.page = 0
        self.qr: dict[str, Any] = {"model": "2", "size": 3, "ec": "L", "payload": None}
        self.bar = {"height": 162, "width": 3, "hri": 0}
        self.graphics: RasterImage | None = None

    def emit(self, element: Any) -> None:
        self.out.elements.append(element)

    def text(self, raw: bytes) -> None:
        encoding = self.pages.get(self.page, "CP437")
        text = _decoder(encoding)(raw)
        last = self.out.elements[-1] if self.out.elements else None
        if isinstance(last, Text) and last.style == self.style:
            self.out.elements[-1] = Text(last.text + text, self.style)
        else:
            self.emit(Text(text, self.style))

    def run(self, data: bytes) -> Decoded:
        r = _Reader(data)
        while r.pos < len(data):
            start, b = r.pos, data[r.pos]
            if b >= 0x20 or b == HT:
                end = start
                while end < len(data) and (data[end] >= 0x20 or data[end] == HT):
                    end += 1
                self.text(r.take(end - start, "text"))
                continue
            r.pos += 1
            if b == LF:
                self.emit(LineFeed())
            elif b == CR:
                continue
            elif b == ESC:
                self.esc(r)
            elif b == GS:
                self.gs(r)
            elif b == DLE:
                self.dle(r)
            elif b == FS:
                self.fs(r)
            else:
                raise DecodeError(f"stray control byte 0x{b:02x} at offset {start}")
        return self.out

    def esc(self, r: _Reader) -> None:
        at = r.pos - 1
        c = r.byte("ESC command")
        s = self.style
        if c == ord("@"):
            self.init()
            self.emit(Init())
        elif c == ord("!"):
            n = r.byte("ESC !")
            self.style = replace(
                s,
                font=n & 1,
                bold=bool(n & 0x08),
                height=2 if n & 0x10 else 1,
                width=2 if n & 0x20 else 1,
                underline=1 if n & 0x80 else 0,
            )
        elif c == ord("E"):
            self.style = replace(s, bold=bool(r.byte("ESC E") & 1))
        elif c == ord("G"):
            self.style = replace(s, double_strike=bool(r.byte("ESC G") & 1))
        elif c == ord("-"):
            self.style = replace(s, underline=r.byte("ESC -") % 48)
        elif c == ord("M"):
            self.style = replace(s, font=r.byte("ESC M") % 48)
        elif c == ord("a"):
            n = r.byte("ESC a")
            if n not in ALIGNS:
                raise DecodeError(f"ESC a {n} at offset {at}")
            self.style = replace(s, align=ALIGNS[n])
        elif c == ord("{"):
            self.style = replace(s, flip=bool(r.byte("ESC {") & 1))
        elif c == ord("t"):
            self.page = r.byte("ESC t")
            self.emit(CodePage(self.page, self.pages.get(self.page, "?")))
        elif c == ord("d"):
            self.emit(Feed(lines=r.byte("ESC d")))
        elif c == ord("J"):
            self.emit(Feed(dots=r.byte("ESC J")))
        elif c == ord("*"):
            m = r.byte("ESC *")
            width = r.word("ESC *")
            column = 1 if m in (0, 1) else 3
            data = r.take(width * column, "ESC * data")
            self.emit(RasterImage(width, 8 * column, data, "ESC *", s.align, m))
        elif c in _ESC_PLAIN:
            self.emit(Command(f"ESC {chr(c)}", r.take(_ESC_PLAIN[c], f"ESC {chr(c)}")))
        else:
            raise DecodeError(f"unknown command ESC 0x{c:02x} at offset {at}")

    def gs(self, r: _Reader) -> None:
        at = r.pos - 1
        c = r.byte("GS command")
        s = self.style
        if c == ord("!"):
            n = r.byte("GS !")
            self.style = replace(s, width=(n >> 4) + 1, height=(n & 0x0F) + 1)
        elif c == ord("B"):
            self.style = replace(s, invert=bool(r.byte("GS B") & 1))
        elif c == ord("b"):
            self.style = replace(s, smooth=bool(r.byte("GS b") & 1))
        elif c == ord("V"):
            m = r.byte("GS V")
            if m in (0, 48, 1, 49):
                self.emit(Cut(partial=m in (1, 49)))
            elif m in (65, 66, 97, 98, 103, 104):
                self.emit(Cut(partial=m in (66, 98, 104), feed=r.byte("GS V n")))
            else:
                raise DecodeError(f"GS V {m} at offset {at}")
        elif c == ord("v"):
            if r.byte("GS v") != ord("0"):
                raise DecodeError(f"GS v without 0 at offset {at}")
            density = r.byte("GS v 0")
            width_bytes, height = r.word("GS v 0 x"), r.word("GS v 0 y")
            data = r.take(width_bytes * height, "GS v 0 data")
            self.emit(RasterImage(width_bytes * 8, height, data, "GS v 0", s.align, density))
        elif c == ord("("):
            self.gs_paren(r, at)
        elif c == ord("k"):
            self.barcode(r)
        elif c == ord("h"):
            self.bar["height"] = r.byte("GS h")
        elif c == ord("w"):
            self.bar["width"] = r.byte("GS w")
        elif c == ord("H"):
            self.bar["hri"] = r.byte("GS H") % 48
        elif c == ord("f"):
            r.byte("GS f")
        elif c in _GS_PLAIN:
            self.emit(Command(f"GS {chr(c)}", r.take(_GS_PLAIN[c], f"GS {chr(c)}")))
        else:
            raise DecodeError(f"unknown command GS 0x{c:02x} at offset {at}")

    def gs_paren(self, r: _Reader, at: int) -> None:
        fn_letter = r.byte("GS (")
        body = r.take(r.word("GS ( length"), "GS ( body")
        if fn_letter == ord("k") and len(body) >= 2 and body[0] == ord("1"):
            self.qr_function(body[1], body[2:], at)
        elif fn_letter == ord("L") and len(body) >= 2:
            self.graphics_function(body, at)
        else:
            self.emit(Command(f"GS ( {chr(fn_letter)}", body))

    def qr_function(self, fn: int, args: bytes, at: int) -> None:
        if fn == 65:  # model
            self.qr["model"] = QR_MODELS.get(args[0], "?")
        elif fn == 67:
            self.qr["size"] = args[0]
        elif fn == 69:
            self.qr["ec"] = QR_EC.get(args[0], "?")
        elif fn == 80:  # store: m = '0', then the data
            self.qr["payload"] = args[1:]
        elif fn == 81:  # print the stored symbol
            if self.qr["payload"] is None:
                raise DecodeError(f"QR print without stored data at offset {at}")
            self.emit(
                QrCode(
                    self.qr["payload"],
                    self.qr["model"],
                    self.qr["size"],
                    self.qr["ec"],
                    self.style.align,
                )
            )
        else:
            self.emit(Command(f"GS ( k 1 {fn}", args))

    def graphics_function(self, body: bytes, at: int) -> None:
        fn = body[1]
        if fn == ord("p"):  # store raster graphics: a bx by c xL xH yL yH data
            if len(body) < 10:
                raise DecodeError(f"GS ( L p cut short at offset {at}")
            width = body[6] + 256 * body[7]
            height = body[8] + 256 * body[9]
            self.graphics = RasterImage(width, height, body[10:], "GS ( L", self.style.align)
        elif fn == ord("2"):
            if self.graphics is None:
                raise DecodeError(f"GS ( L print without stored graphics at offset {at}")
            self.emit(replace(self.graphics, align=self.style.align))
        else:
            self.emit(Command(f"GS ( L {chr(fn)}", body))

    def barcode(self, r: _Reader) -> None:
        m = r.byte("GS k")
        if m <= 6:
            end = r.data.find(b"\x00", r.pos)
            if end < 0:
                raise DecodeError(f"GS k {m} data without NUL at offset {r.pos}")
            data = r.take(end - r.pos, "GS k data")
            r.take(1, "NUL")
        else:
            data = r.take(r.byte("GS k n"), "GS k data")
        self.emit(
            Barcode(
                BARCODES.get(m, f"type {m}"),
                data,
                self.bar["height"],
                self.bar["width"],
                self.bar["hri"],
                self.style.align,
            )
        )

    def dle(self, r: _Reader) -> None:
        at = r.pos - 1
        c = r.byte("DLE command")
        if c == 0x04:
            self.emit(StatusQuery(r.byte("DLE EOT")))
        elif c == 0x05:
            self.emit(Command("DLE ENQ", r.take(1, "DLE ENQ")))
        elif c == 0x14:
            self.emit(Command("DLE DC4", r.take(3, "DLE DC4")))
        else:
            raise DecodeError(f"unknown command DLE 0x{c:02x} at offset {at}")

    def fs(self, r: _Reader) -> None:
        at = r.pos - 1
        c = r.byte("FS command")
        if c in (ord("."), ord("&")):
            self.emit(Command(f"FS {chr(c)}"))
        elif c == ord("p"):
            self.emit(Command("FS p", r.take(2, "FS p")))
        else:
            raise DecodeError(f"unknown command FS 0x{c:02x} at offset {at}")


def decode(data: bytes, profile: str = "TM-T20II") -> Decoded:
    """The elements printed by ``data`` on a printer with escpos profile ``profile``."""
    return _Decoder(profile).run(data)
