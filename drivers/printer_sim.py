"""A simulated ticket printer: python-escpos's ``Dummy`` with the real printers' rendering.

It draws each ticket with the same :class:`drivers.ticket_escpos.TicketRenderer` and the
same profile as :class:`drivers.printer_escpos.EscposPrinter`, so its bytes are the bytes a
real printer would get; tests walk them back into text, QR codes and the cut. It records
every ticket printed (``tickets``), each ticket's bytes (``ticket_bytes``) and all bytes
(``output``), and it fails on purpose, the way real printers do:

- ``paper = "low"`` (tickets still print, ``fault.printer_paper_low``), ``"out"``;
- ``cover_open = True``; ``offline = True`` (cable pulled, printer switched off);
- ``fail_next_print = True``: the status still says ready, the next print raises
  :class:`PrintError` (a jam or a cable pulled mid-ticket), then it prints again.

A print while the status is not ready raises PrintError too and prints nothing.
``on_write``, when set, is called with every chunk of bytes as escpos writes it, from the
printing thread, inside the print (benchmarks time the first byte of a ticket with it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

from controller.settings_printer import PrinterSection
from drivers.printer import PrintError, PrinterStatus, TicketSpec
from drivers.ticket_escpos import TicketRenderer, load_escpos, make_printer
from entrada.codes import Fault

logger = logging.getLogger(__name__)

PaperState = Literal["ok", "low", "out"]
PAPER_STATES: tuple[PaperState, ...] = ("ok", "low", "out")


def _recording_dummy(on_write: Callable[[bytes], None]) -> Any:
    """An escpos ``Dummy`` whose every write is also handed to ``on_write``."""
    from escpos.printer import Dummy

    class RecordingDummy(Dummy):
        def _raw(self, msg: bytes) -> None:
            super()._raw(msg)
            on_write(msg)

    return RecordingDummy


class SimPrinter:
    """Implements :class:`drivers.printer.TicketPrinter` in memory; see the module docstring."""

    def __init__(
        self,
        cfg: PrinterSection | None = None,
        *,
        name: str = "sim",
        on_write: Callable[[bytes], None] | None = None,
    ) -> None:
        cfg = cfg or PrinterSection()
        load_escpos(cfg.capabilities_dir)
        self.name = name
        self.profile = cfg.profile
        self.paper_width = cfg.paper_width_px()
        self.native_qr = cfg.use_native_qr()
        #: Called with each chunk of bytes written (see the module docstring).
        self.on_write = on_write
        self.cover_open = False
        self.offline = False
        self.fail_next_print = False
        #: Every ticket printed, oldest first; ``ticket_bytes`` holds their bytes.
        self.tickets: list[TicketSpec] = []
        self.ticket_bytes: list[bytes] = []
        #: How many prints failed (on purpose or because the printer was not ready).
        self.failed_prints = 0
        #: How many times the status was asked.
        self.status_checks = 0
        self.closed = False
        self._paper: PaperState = "ok"
        self._lock = threading.RLock()  # on_write may ask for the status
        dummy_class = _recording_dummy(self._wrote)
        self._dummy = make_printer(dummy_class, cfg.profile, self.paper_width)
        self._renderer = TicketRenderer(
            self._dummy, paper_width=self.paper_width, native_qr=self.native_qr
        )

    # --------------------------------------------------------------- fault knobs

    @property
    def paper(self) -> PaperState:
        return self._paper

    @paper.setter
    def paper(self, value: str) -> None:
        if value not in PAPER_STATES:
            raise ValueError(f"paper must be one of {', '.join(PAPER_STATES)}, got {value!r}")
        self._paper = value

    @property
    def output(self) -> bytes:
        """Every byte printed so far (the tickets that printed, in order)."""
        with self._lock:
            return b"".join(self.ticket_bytes)

    # ------------------------------------------------------------- TicketPrinter

    def status(self) -> PrinterStatus:
        with self._lock:
            self.status_checks += 1
            return self._status()

    def print_ticket(self, ticket: TicketSpec) -> None:
        with self._lock:
            if self.closed:
                raise PrintError(f"simulated printer {self.name!r} is closed")
            state = self._status()
            if self.fail_next_print or not state.ready:
                self.failed_prints += 1
                why = "a simulated print failure" if self.fail_next_print else "not ready"
                self.fail_next_print = False
                raise PrintError(
                    f"simulated printer {self.name!r}: {why} "
                    f"({', '.join(sorted(state.faults)) or 'no fault reported'})"
                )
            self._dummy.clear()
            try:
                self._renderer.render(ticket)
            except Exception as err:  # whatever escpos raises, the print failed
                self.failed_prints += 1
                raise PrintError(f"simulated printer {self.name!r}: {err}") from err
            self.ticket_bytes.append(self._dummy.output)
            self.tickets.append(ticket)
        logger.debug("sim printer %r printed ticket %s", self.name, ticket.number)

    def close(self) -> None:
        with self._lock:
            self.closed = True

    # ------------------------------------------------------------------ helpers

    def _status(self) -> PrinterStatus:
        if self.closed or self.offline:
            return PrinterStatus(frozenset({Fault.PRINTER_OFFLINE}))
        faults: set[Fault] = set()
        if self._paper == "out":
            faults.add(Fault.PRINTER_PAPER_OUT)
        elif self._paper == "low":
            faults.add(Fault.PRINTER_PAPER_LOW)
        if self.cover_open:
            faults.add(Fault.PRINTER_COVER_OPEN)
        return PrinterStatus(frozenset(faults))

    def _wrote(self, chunk: bytes) -> None:
        callback = self.on_write
        if callback is not None:
            callback(chunk)
