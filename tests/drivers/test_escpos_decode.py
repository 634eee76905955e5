"""The ESC/POS decoder (a test instrument) against bytes written by hand and by escpos."""

from __future__ import annotations

import pytest
import qrcode
from escpos_decode import (
    Barcode,
    CodePage,
    Cut,
    DecodeError,
    Feed,
    Init,
    QrCode,
    RasterImage,
    StatusQuery,
    Style,
    Text,
    decode,
)
from PIL import Image

from drivers.ticket_escpos import load_escpos


@pytest.fixture(scope="module")
def dummy():
    load_escpos()
    from escpos.printer import Dummy

    def make(profile: str = "TM-T20II"):
        return Dummy(profile=profile)

    return make


def test_plain_text_and_line_feeds():
    decoded = decode(b"Hello\nWorld\n\n")

    assert [line.text for line in decoded.lines] == ["Hello", "World", ""]
    assert decoded.text_lines == ["Hello", "World"]
    assert decoded.lines[0].style == Style()


@pytest.mark.parametrize(
    ("command", "style"),
    [
        (b"\x1bE\x01", Style(bold=True)),
        (b"\x1b-\x02", Style(underline=2)),
        (b"\x1ba\x01", Style(align="center")),
        (b"\x1ba\x32", Style(align="right")),
        (b"\x1d!\x33", Style(width=4, height=4)),
        (b"\x1d!\x10", Style(width=2, height=1)),
        (b"\x1b!\x30", Style(width=2, height=2)),
        (b"\x1b!\x88", Style(bold=True, underline=1)),
        (b"\x1bM\x01", Style(font=1)),
        (b"\x1dB\x01", Style(invert=True)),
        (b"\x1b{\x01", Style(flip=True)),
    ],
)
def test_style_commands(command, style):
    (run,) = decode(command + b"x").of(Text)

    assert run.style == style


def test_esc_bang_sets_the_size_that_gs_bang_set_before():
    runs = decode(b"\x1d!\x33A\x1b!\x00B").of(Text)

    assert [(r.text, r.style.width) for r in runs] == [("A", 4), ("B", 1)]


def test_init_resets_style_and_code_page():
    decoded = decode(b"\x1bE\x01\x1bt\x12\x9d\x1b@\x9d")

    first, second = decoded.of(Text)
    assert (first.text, first.style.bold) == ("Ł", True)
    assert (second.text, second.style.bold) == ("¥", False)  # 0x9d in CP437 again
    assert decoded.of(Init)


def test_code_pages_come_from_the_profile_and_python_codecs():
    decoded = decode(b"\x1bt\x12" + "Łódź".encode("cp852") + b"\x1bt\x2d" + "ř".encode("cp1250"))

    assert decoded.text == "Łódźř"
    assert [c.encoding for c in decoded.of(CodePage)] == ["CP852", "CP1250"]


def test_escpos_magic_encoding_reads_back(dummy):
    printer = dummy()
    text = "Łódź, Žluťoučký kůň, Ærøskøbing, Ελλάδα"

    printer.textln(text)

    assert decode(printer.output).text_lines == [text]


def test_native_qr_is_reported_when_printed(dummy):
    printer = dummy()
    printer.set(align="center")

    printer.qr("https://example.org/t/1", size=7, native=True)

    (code,) = decode(printer.output).qr_codes
    assert code == QrCode(b"https://example.org/t/1", "2", 7, "L", "center")
    assert code.text == "https://example.org/t/1"


def test_qr_print_without_data_is_an_error():
    with pytest.raises(DecodeError, match="without stored data"):
        decode(b"\x1d(k\x03\x001Q0")


def test_software_qr_reads_back_as_its_module_matrix(dummy):
    printer = dummy()

    printer.qr("HELLO 123", size=4, native=False)

    (image,) = decode(printer.output).images
    expected = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_L)
    expected.add_data("HELLO 123")
    expected.make(fit=True)
    assert image.command == "GS v 0"
    assert image.qr_modules() == expected.get_matrix()


def test_raster_image_size_and_bits(dummy):
    picture = Image.new("1", (16, 3), 1)  # white
    picture.putpixel((0, 0), 0)
    picture.putpixel((15, 2), 0)
    printer = dummy()

    printer.image(picture)

    (image,) = decode(printer.output).images
    assert (image.width, image.height) == (16, 3)
    assert image.black(0, 0) and image.black(15, 2) and not image.black(1, 0)
    assert image.bbox() == (0, 0, 16, 3)


def test_graphics_and_column_images(dummy):
    picture = Image.new("1", (8, 8), 0)
    printer = dummy()

    printer.image(picture, impl="graphics")
    printer.image(picture, impl="bitImageColumn")

    images = decode(printer.output).images
    assert [(i.command, i.width) for i in images] == [("GS ( L", 8), ("ESC *", 8)]
    assert images[0].black(7, 7)


def test_hardware_barcode(dummy, capsys):
    printer = dummy()

    printer.barcode("4006381333931", "EAN13", height=80, width=3, pos="BELOW")

    (barcode,) = decode(printer.output).barcodes
    assert barcode == Barcode("EAN13", b"4006381333931", 80, 3, 2, "center")
    capsys.readouterr()  # escpos prints "Using hardware barcode renderer"


def test_function_b_barcode():
    (barcode,) = decode(b"\x1dkI\x05{B123").barcodes

    assert (barcode.system, barcode.data) == ("CODE128", b"{B123")


def test_cut_feed_and_status_queries(dummy):
    printer = dummy()
    printer.textln("last")

    printer.cut()
    printer.cut(mode="PART")
    printer.cut(feed=False)

    decoded = decode(printer.output + b"\x10\x04\x01")
    assert decoded.of(Feed)[0] == Feed(lines=6)
    assert decoded.cuts == [Cut(False), Cut(True), Cut(True, feed=0)]
    assert decoded.of(StatusQuery) == [StatusQuery(1)]
    assert decoded.line_with("last").text == "last"


def test_ends_with_cut():
    assert decode(b"x\n\x1dV\x00").ends_with_cut
    assert not decode(b"\x1dV\x00x\n").ends_with_cut


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x1bZ", "unknown command ESC"),
        (b"\x1d\x99", "unknown command GS"),
        (b"\x07", "stray control byte 0x07"),
        (b"\x1dv0\x00\x02\x00\x02\x00\xff", "GS v 0 data cut short"),
        (b"\x1b", "ESC command cut short"),
        (b"\x1dk\x02123", "without NUL"),
    ],
)
def test_strict_about_what_it_does_not_know(data, message):
    with pytest.raises(DecodeError, match=message):
        decode(data)


def test_line_with_lists_the_lines_when_missing():
    with pytest.raises(AssertionError, match="'Hello'"):
        decode(b"Hello\n").line_with("absent")


def test_qr_modules_refuses_a_blank_image():
    blank = RasterImage(8, 1, b"\x00", "GS v 0", "left")

    with pytest.raises(DecodeError, match="blank"):
        blank.qr_modules()
