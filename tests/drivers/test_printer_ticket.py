"""The ticket as printed (decoded back from the bytes), its value types, and loading escpos."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import qrcode
from escpos_decode import CodePage, Cut, Init, QrCode, Text, decode

from controller.settings_printer import PrinterSection
from drivers.printer import PrinterStatus, TicketSpec
from drivers.printer_sim import SimPrinter
from drivers.ticket_escpos import load_escpos, qr_module_size
from entrada.codes import Fault
from entrada.errors import DriverError

REPO = Path(__file__).resolve().parents[2]
LABELS = {
    "ahead": "Osób przed Tobą",
    "wait": "Szacowany czas",
    "minutes": "min",
    "issued": "Wydano",
    "scan": "Zeskanuj, aby śledzić kolejkę",
}
URL = "https://q.example.org/t/A042?site=lodz"


def ticket(**changes) -> TicketSpec:
    fields = {
        "site_name": "Urząd Miasta Łódź",
        "service_name": "Wydział Komunikacji",
        "number": "A042",
        "issued_at": datetime(2025, 3, 7, 9, 5, tzinfo=ZoneInfo("Europe/Warsaw")),
        "ahead": 3,
        "est_wait_minutes": 12,
        "qr_url": URL,
        "labels": LABELS,
        "footer": "",
    }
    fields.update(changes)
    return TicketSpec(**fields)


def printed(spec: TicketSpec, **cfg) -> tuple[SimPrinter, bytes]:
    printer = SimPrinter(PrinterSection(**cfg))
    printer.print_ticket(spec)
    return printer, printer.ticket_bytes[-1]


# ----------------------------------------------------------------- value types


def test_ticket_spec_checks_its_fields():
    with pytest.raises(ValueError, match="labels lack minutes, scan"):
        ticket(labels={"ahead": "a", "wait": "w", "issued": "i"})
    with pytest.raises(ValueError, match="negative"):
        ticket(ahead=-1)
    with pytest.raises(ValueError, match="number"):
        ticket(number=" ")
    with pytest.raises(ValueError, match="qr_url"):
        ticket(qr_url="x" * 257)


def test_ticket_spec_keeps_its_own_read_only_labels():
    words = dict(LABELS)
    spec = ticket(labels=words)

    words["ahead"] = "changed"

    assert spec.labels["ahead"] == LABELS["ahead"]
    with pytest.raises(TypeError):
        spec.labels["ahead"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("faults", "ready"),
    [
        (set(), True),
        ({Fault.PRINTER_PAPER_LOW}, True),
        ({Fault.PRINTER_PAPER_OUT}, False),
        ({Fault.PRINTER_COVER_OPEN, Fault.PRINTER_PAPER_LOW}, False),
        ({Fault.PRINTER_OFFLINE}, False),
    ],
)
def test_status_is_ready_with_nothing_but_paper_low(faults, ready):
    assert PrinterStatus(frozenset(faults)).ready is ready


# ------------------------------------------------------------------ the ticket


def test_ticket_reads_back_with_native_qr():
    _, data = printed(ticket(footer="Dziękujemy"))

    decoded = decode(data)

    site = decoded.line_with("Urząd Miasta Łódź")
    assert (site.style.bold, site.style.align) == (True, "center")
    assert decoded.line_with("Wydział Komunikacji").style.bold is False
    number = decoded.line_with("A042")
    assert (number.text, number.style.width, number.style.height) == ("A042", 4, 4)
    assert decoded.line_with("Wydano:").text == "Wydano: 2025-03-07 09:05"
    assert decoded.line_with("Osób przed Tobą").text == "Osób przed Tobą: 3"
    assert decoded.line_with("Szacowany czas").text == "Szacowany czas: 12 min"
    assert decoded.qr_codes == [QrCode(URL.encode(), "2", 6, "L", "center")]
    assert decoded.line_with("Dziękujemy").style.align == "center"
    assert decoded.images == []
    assert isinstance(decoded.elements[0], Init)
    assert decoded.ends_with_cut and decoded.cuts == [Cut(partial=False)]


def test_the_qr_code_comes_before_the_scan_label():
    decoded = decode(printed(ticket())[1])

    kinds = [type(e).__name__ for e in decoded.elements]
    scan_at = next(
        i for i, e in enumerate(decoded.elements) if "Zeskanuj" in getattr(e, "text", "")
    )
    assert kinds.index("QrCode") < scan_at


def test_ticket_with_software_qr_carries_the_url_in_its_raster():
    _, data = printed(ticket(), native_qr=False)

    decoded = decode(data)

    (image,) = decoded.images
    assert (image.command, image.width) == ("GS v 0", 576)  # centred on the paper width
    expected = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_L)
    expected.add_data(URL)
    expected.make(fit=True)
    assert image.qr_modules() == expected.get_matrix()
    assert decoded.qr_codes == []
    assert decoded.line_with("Zeskanuj")
    assert decoded.ends_with_cut


def test_a_58mm_printer_without_cutter_or_native_qr():
    _, data = printed(ticket(), profile="POS-5890")

    decoded = decode(data, profile="POS-5890")

    (image,) = decoded.images
    assert image.width == 384
    assert decoded.cuts == []  # no cutter: escpos only feeds
    assert decoded.line_with("A042")


def test_optional_lines_are_left_out():
    decoded = decode(printed(ticket(est_wait_minutes=None, qr_url=None))[1])

    assert not any("Szacowany" in line for line in decoded.text_lines)
    assert not any("Zeskanuj" in line for line in decoded.text_lines)
    assert decoded.qr_codes == [] and decoded.images == []


def test_polish_text_goes_out_in_cp852():
    _, data = printed(ticket(site_name="Łódź"))

    assert b"\x1bt\x12" + "Łódź".encode("cp852") in data
    assert decode(data).line_with("Łódź").text == "Łódź"


def test_czech_text_reads_back():
    decoded = decode(printed(ticket(service_name="Žluťoučký kůň úpěl ďábelské ódy"))[1])

    assert decoded.line_with("Žluťoučký").text == "Žluťoučký kůň úpěl ďábelské ódy"


def test_characters_no_code_page_has_are_simplified():
    decoded = decode(printed(ticket(footer="Brașov → 😀"))[1])

    assert decoded.line_with("Bra").text == "Brasov ? ?"


def test_control_characters_cannot_smuggle_commands():
    decoded = decode(printed(ticket(site_name="Evil\x1bi\x1dV\x00\nname"))[1])

    assert decoded.line_with("Evil").text == "Evil i V  name"
    assert len(decoded.cuts) == 1


def test_every_ticket_selects_its_code_pages_afresh():
    # ESC @ puts the printer back on its default code page; escpos must not assume CP852.
    printer, first = printed(ticket(site_name="Łódź"))
    printer.print_ticket(ticket(site_name="Łódź"))
    second = printer.ticket_bytes[-1]

    assert first == second
    decoded = decode(second)
    assert decoded.line_with("Łódź").text == "Łódź"
    first_text = next(i for i, e in enumerate(decoded.elements) if isinstance(e, Text))
    assert isinstance(decoded.elements[first_text - 1], CodePage)


def test_the_shared_profile_is_not_changed():
    from escpos.capabilities import get_profile_class

    printed(ticket(), profile="default", paper_width=400)

    assert get_profile_class("default").profile_data["media"]["width"]["pixels"] == "Unknown"


@pytest.mark.parametrize("native", [True, False])
def test_escpos_prints_nothing_to_stdout(capsys, native):
    printed(ticket(), profile="default", paper_width=512, native_qr=native)

    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("width", "size"), [(576, 6), (384, 6), (300, 4), (96, 1)])
def test_qr_modules_shrink_on_narrow_paper(width, size):
    assert qr_module_size(width) == size


def test_the_largest_qr_fits_a_58mm_roll():
    _, data = printed(ticket(qr_url="https://x.example/" + "a" * 238), profile="POS-5890")

    (image,) = decode(data, profile="POS-5890").images
    assert image.width == 384


# ---------------------------------------------------------------- loading escpos


def test_the_capabilities_folder_must_be_private(tmp_path):
    folder = tmp_path / "caps"
    folder.mkdir()
    folder.chmod(0o777)

    with pytest.raises(DriverError, match="not be writable by others"):
        load_escpos_fresh(folder)


@pytest.mark.skipif(os.getuid() != 0, reason="chown needs root")
def test_the_capabilities_folder_must_be_ours(tmp_path):
    folder = tmp_path / "caps"
    folder.mkdir(mode=0o700)
    os.chown(folder, 12345, -1)

    with pytest.raises(DriverError, match="must belong to uid"):
        load_escpos_fresh(folder)


def load_escpos_fresh(folder: Path) -> None:
    """load_escpos as if escpos were not imported yet (its checks run before the import)."""
    saved = {name: mod for name, mod in sys.modules.items() if name == "escpos.printer"}
    sys.modules.pop("escpos.printer", None)
    env = os.environ.get("ESCPOS_CAPABILITIES_PICKLE_DIR")
    try:
        load_escpos(folder)
    finally:
        sys.modules.update(saved)
        if env is not None:
            os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"] = env


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCPOS_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_escpos_leaves_logging_and_stdout_alone(tmp_path):
    # A fresh interpreter: escpos is imported for the first time, no logging configured.
    result = run_python(
        f"""
        import logging, sys
        from datetime import datetime, timezone
        from controller.settings_printer import PrinterSection
        from drivers import printer_escpos, printer_sim
        assert "escpos.capabilities" not in sys.modules, "escpos imported too early"
        from drivers.printer import TicketSpec
        labels = dict(ahead="a", wait="w", minutes="m", issued="i", scan="s")
        spec = TicketSpec("S", "V", "A1", datetime.now(timezone.utc), 0, 1, "u", labels)
        cfg = dict(capabilities_dir={str(tmp_path / "caps")!r}, native_qr=False)
        printer_sim.SimPrinter(PrinterSection(**cfg)).print_ticket(spec)
        out = {str(tmp_path / "lp0")!r}
        open(out, "wb").close()
        real = printer_escpos.EscposPrinter(PrinterSection(device=out, **cfg))
        real.print_ticket(spec)
        real.close()
        root = logging.getLogger()
        assert root.handlers == [], root.handlers
        assert root.level == logging.WARNING, root.level
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert list((tmp_path / "caps").glob("*.capabilities.pickle"))
    assert (tmp_path / "caps").stat().st_mode & 0o777 == 0o700


def test_a_damaged_capabilities_pickle_is_rebuilt(tmp_path):
    caps = tmp_path / "caps"
    caps.mkdir(mode=0o700)
    version = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pickle_file = caps / f"{version}.capabilities.pickle"
    pickle_file.write_bytes(b"\x80\x02}q\x00(X")  # cut short, as after a power loss

    result = run_python(
        f"""
        import logging
        logging.basicConfig(level=logging.WARNING)
        from pathlib import Path
        from drivers.ticket_escpos import load_escpos
        load_escpos(Path({str(caps)!r}))
        from escpos.capabilities import get_profile
        assert get_profile("TM-T20II").media["width"]["pixels"] == 576
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "capabilities pickle unreadable" in result.stderr
    assert pickle_file.stat().st_size > 1000
