"""A queue ticket drawn on any python-escpos printer object, and a safe way to load escpos.

:class:`TicketRenderer` writes the same commands whatever the printer is (``Dummy``,
``File``, ``Serial``, ``Network``, ``Usb``), so the simulator's bytes are the real
printer's bytes. The ticket: site name (bold), service name, the number at four times the
normal size, issue time, people ahead, estimated wait, a QR code and a full cut, all
centred on the profile's paper width.

Text goes through escpos's magic encoding, which picks a code page from the profile for
each run (``Łódź`` and ``Žluťoučký`` switch to CP852 with ``ESC t 18``). Two traps are
handled here: ``ESC @`` at the start of each ticket resets the printer to its default
code page while escpos still believes its last one is active, so its state is reset with
it (and every ticket is encoded alike); and a character that no code page of the profile
has would print as ``?``, so it is first simplified where it can be (``ș`` to ``s``,
typographic quotes and dashes to ASCII on a printer without them; an emoji stays ``?``).
Control characters in any field become spaces: a site name must not smuggle printer
commands in.

The QR code is native (``GS ( k``: a whole ticket is ~0.26 KB) when the profile supports
it, else escpos renders it to a raster image (``GS v 0``) padded to the paper width: a
ticket is then ~13.6 KB on 576 dots, ~9 KB on 384, 14 s at 9600 baud. The module size
shrinks on paper narrower than 384 dots so the largest allowed payload still fits.

Loading escpos (:func:`load_escpos`) has side effects that this module contains: its
import calls ``logging.basicConfig()`` (and its printers later call ``logging.info()``,
which does the same when the root logger has no handler), so every escpos call that
can log runs inside :func:`root_logging_kept`; and its import parses a 1 MB printer
database unless it finds a pickle in ``ESCPOS_CAPABILITIES_PICKLE_DIR``, or else makes a
new temporary folder on every import. The pickle is loaded with ``pickle.load``, so its
folder must be ours alone; a pickle cut short by a power loss is dropped and rebuilt.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import logging
import os
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from drivers.printer import TicketSpec
from entrada.errors import DriverError

logger = logging.getLogger(__name__)

PICKLE_DIR_ENV = "ESCPOS_CAPABILITIES_PICKLE_DIR"
#: QR module (dot) size on a roll of 384 dots or more: ~0.75 mm at 203 dpi.
QR_MODULE = 6
#: Character size of the ticket number (GS !): 4x4 the normal glyph.
NUMBER_SIZE = 4
_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",  # left single quotation mark
        "\u2019": "'",  # right single quotation mark
        "\u201a": "'",  # single low-9 quotation mark
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',  # double low-9 quotation mark (Polish, Czech)
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2026": "...",
        "\u00a0": " ",  # no-break space
    }
)

_load_lock = threading.Lock()


# ------------------------------------------------------------------ loading escpos


@contextlib.contextmanager
def root_logging_kept() -> Iterator[None]:
    """Undo whatever escpos does to the root logger inside the block (``basicConfig``)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def default_capabilities_dir() -> Path:
    """``$ESCPOS_CAPABILITIES_PICKLE_DIR``, else ``entrada-escpos-<uid>`` in the temp folder."""
    env = os.environ.get(PICKLE_DIR_ENV)
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"entrada-escpos-{os.getuid()}"


def _private_dir(folder: Path) -> Path:
    """Make ``folder`` (mode 0700) or check that only we can write to it."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError as err:
        raise DriverError(f"escpos capabilities folder {folder}: {err.strerror or err}") from err
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise DriverError(
            f"escpos capabilities folder {folder} must belong to uid {os.getuid()} and not be "
            "writable by others (escpos loads a pickle from it)"
        )
    return folder


def load_escpos(capabilities_dir: Path | None = None) -> None:
    """Import ``escpos.printer`` once, with the pickle folder set and logging kept.

    Call it before touching any escpos module; later calls return at once (the folder of
    the first one stays in use). Raises DriverError if escpos cannot be loaded.
    """
    with _load_lock:
        if "escpos.printer" in sys.modules:
            return
        folder = _private_dir(capabilities_dir or default_capabilities_dir())
        os.environ[PICKLE_DIR_ENV] = str(folder)
        with root_logging_kept():
            try:
                importlib.import_module("escpos.printer")
            # A damaged pickle fails inside pickle.load with any of several errors; the
            # retry below parses the database afresh, and a second failure is reported.
            except Exception as err:
                stale = list(folder.glob("*.capabilities.pickle"))
                if not stale:
                    raise DriverError(f"python-escpos cannot be loaded: {err}") from err
                logger.warning("escpos capabilities pickle unreadable (%s); rebuilding", err)
                for pickle_file in stale:
                    pickle_file.unlink(missing_ok=True)
                try:
                    importlib.import_module("escpos.printer")
                except Exception as err2:  # as above: report it as the driver's error
                    raise DriverError(f"python-escpos cannot be loaded: {err2}") from err2
        logger.debug("escpos loaded, capabilities cached in %s", folder)


def tune_profile(printer: Any, paper_width: int) -> None:
    """Give ``printer`` a private copy of its profile with ``paper_width`` as the media width.

    Profiles are classes shared by every printer of that model, so their data is copied
    before it is changed. A width keeps ``image()`` from printing to stdout and centres
    the raster QR code.
    """
    profile = printer.profile
    data = copy.deepcopy(type(profile).profile_data)
    media = data.setdefault("media", {})
    width = media.setdefault("width", {})
    width["pixels"] = paper_width
    profile.profile_data = data


def make_printer(cls: Any, profile: str, paper_width: int, **kwargs: Any) -> Any:
    """An instance of escpos printer class ``cls`` with a tuned ``profile`` (not opened)."""
    with root_logging_kept():
        printer = cls(profile=profile, **kwargs)
    tune_profile(printer, paper_width)
    return printer


# ------------------------------------------------------------------------- the ticket


def qr_module_size(paper_width: int) -> int:
    """Dots per QR module: :data:`QR_MODULE`, less on paper narrower than 384 dots."""
    return max(1, min(QR_MODULE, paper_width // 64))


def _clean(text: str) -> str:
    """One printable line: control characters become spaces."""
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).strip()


class _Simplifier:
    """Replaces characters that none of a profile's code pages has with near ones."""

    MAX_CACHED = 4096

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder
        # can_encode() is True for ASCII in any code page it has a table for.
        self._encodings = [e for e in encoder.codepages if encoder.can_encode(e, "A")]
        self._cache: dict[str, str] = {}

    def char(self, ch: str) -> str:
        done = self._cache.get(ch)
        if done is None:
            done = self._simplify(ch)
            if len(self._cache) < self.MAX_CACHED:
                self._cache[ch] = done
        return done

    def _simplify(self, ch: str) -> str:
        if ord(ch) < 128 or any(self._encoder.can_encode(e, ch) for e in self._encodings):
            return ch
        plain = ch.translate(_PUNCTUATION)
        if plain != ch:
            return plain
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if base and base != ch and all(self.char(c) == c for c in base):
            return base
        return "?"

    def text(self, text: str) -> str:
        return "".join(self.char(ch) for ch in _clean(text))


def ticket_lines(ticket: TicketSpec) -> list[str]:
    """The detail lines under the number (issue time, people ahead, wait)."""
    labels = ticket.labels
    lines = [
        f"{labels['issued']}: {ticket.issued_at.strftime(ticket.time_format)}",
        f"{labels['ahead']}: {ticket.ahead}",
    ]
    if ticket.est_wait_minutes is not None:
        lines.append(f"{labels['wait']}: {ticket.est_wait_minutes} {labels['minutes']}")
    return lines


class TicketRenderer:
    """Draws tickets on one escpos printer object (escpos loaded, profile tuned)."""

    def __init__(self, printer: Any, *, paper_width: int, native_qr: bool) -> None:
        self.printer = printer
        self.paper_width = paper_width
        self.native_qr = native_qr
        self._say = _Simplifier(printer.magic.encoder).text

    def reset(self) -> None:
        """``ESC @``, and forget escpos's idea of the active code page (module docstring)."""
        self.printer.hw("INIT")
        self.printer.magic.encoding = None
        self.printer.magic.encoder.used_encodings.clear()

    def render(self, ticket: TicketSpec) -> None:
        """Write ``ticket``, from ``ESC @`` to the cut."""
        p, say = self.printer, self._say
        self.reset()
        p.set(align="center", bold=True)
        p.textln(say(ticket.site_name))
        p.set(bold=False)
        p.textln(say(ticket.service_name))
        p.ln()
        p.set(custom_size=True, width=NUMBER_SIZE, height=NUMBER_SIZE, bold=True)
        p.textln(say(ticket.number))
        p.set(custom_size=True, width=1, height=1, bold=False)
        p.ln()
        for line in ticket_lines(ticket):
            p.textln(say(line))
        if ticket.qr_url:
            size = qr_module_size(self.paper_width)
            if self.native_qr:
                p.ln()
                p.qr(ticket.qr_url, size=size, native=True)  # centred by ESC a 1
                p.ln()
            else:
                p.qr(ticket.qr_url, size=size, native=False, center=True)
            p.textln(say(ticket.labels["scan"]))
        if ticket.footer:
            p.ln()
            p.textln(say(ticket.footer))
        p.cut()  # feeds 6 lines, then a full cut if the profile has a cutter
