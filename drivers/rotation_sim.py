"""A simulated rotation sensor, turned by tests or by `entrada sim rotate DEVICE`.

An instrument: every turn it reported is recorded in ``rotations`` (``"manual"`` for
:meth:`SimRotation.rotate`, ``"auto"`` for a turn it made by itself), and ``dead = True``
makes it report nothing, as a broken sensor or a jammed arm would (those turns go to
``missed``), so the annulment path can be shown.

With ``auto_after`` set it models a visitor who walks through that many seconds after the
turnstile is unlocked. It learns of the unlocking from the simulated relay, which calls
:meth:`SimRotation.relay_pulsed` on every pulse (the registry connects the two): the model
of the visitor lives with the simulated hardware, so the runtime never treats a simulated
device differently from a real one, and a staff opening (a pulse from the open button) is
walked through too. Each such turn is a ``threading.Timer`` named ``sim-rotation``.

Like gpiozero's mock pins, :meth:`rotate` runs the callback in the caller's thread; the
callback (the app's) only enqueues.
"""

from __future__ import annotations

import logging
import threading

from drivers.rotation import RotationCallback
from entrada.errors import DriverError

logger = logging.getLogger(__name__)


class SimRotation:
    """Implements :class:`drivers.rotation.RotationSensor` in memory; see the module doc."""

    def __init__(self, *, auto_after: float | None = None) -> None:
        if auto_after is not None and auto_after < 0:
            raise ValueError(f"auto_after must not be negative, got {auto_after}")
        #: Seconds after each relay pulse at which the turnstile turns by itself (None: never).
        self.auto_after = auto_after
        #: When True, turns are not reported (recorded in ``missed``); may be flipped at run time.
        self.dead = False
        #: Every turn reported, oldest first: "manual" (rotate) or "auto" (after a pulse).
        self.rotations: list[str] = []
        #: Turns a dead sensor did not report.
        self.missed: list[str] = []
        self.closed = False
        self._on_rotation: RotationCallback | None = None
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()

    def start(self, on_rotation: RotationCallback) -> None:
        """Deliver turns to ``on_rotation`` from now on."""
        with self._lock:
            if self.closed:
                raise DriverError("simulated rotation sensor is closed")
            self._on_rotation = on_rotation

    def rotate(self) -> None:
        """The turnstile turns once (any thread)."""
        self._turn("manual")

    def relay_pulsed(self, seconds: float) -> None:
        """The relay unlocked the turnstile: with ``auto_after``, turn that much later."""
        if self.auto_after is None:
            return
        timer = threading.Timer(self.auto_after, self._auto)
        timer.name = "sim-rotation"
        timer.daemon = True
        with self._lock:
            if self.closed:
                return
            self._timers.add(timer)
        timer.start()

    def _auto(self) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t is not threading.current_thread()}
        try:
            self._turn("auto")
        except DriverError as err:  # closed or not started: nobody to tell
            logger.debug("sim rotation: automatic turn dropped (%s)", err)

    def _turn(self, how: str) -> None:
        with self._lock:
            on_rotation = self._on_rotation
            if self.closed:
                raise DriverError("simulated rotation sensor is closed")
            if on_rotation is None:
                raise DriverError("simulated rotation sensor is not started")
            if self.dead:
                self.missed.append(how)
                logger.debug("sim rotation (%s) not reported: sensor dead", how)
                return
            self.rotations.append(how)
        logger.debug("sim rotation (%s)", how)
        on_rotation()

    def close(self) -> None:
        """Stop delivering turns and cancel pending automatic ones; safe to call twice."""
        with self._lock:
            self.closed = True
            self._on_rotation = None
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
