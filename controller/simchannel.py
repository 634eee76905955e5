"""The local control channel for simulated drivers: ``entrada sim tap|press|rotate ...``.

A Unix socket at ``<run_dir>/sim/<device>.sock`` takes one JSON object per line, e.g.
``{"verb": "tap", "uid": "04A1B2C3D4E5F6"}``, ``{"verb": "press", "button": "open"}``,
``{"verb": "scan", "code": "123456"}`` (a code held under a dispenser's scanner),
``{"verb": "rotate"}`` (the turnstile turns once) or ``{"verb": "printer", "paper": "out"}``
(the simulated ticket printer's faults: ``paper`` ok/low/out, ``cover`` open/closed,
``offline`` true/false, ``fail_next_print`` true), and answers one JSON line
``{"ok": true}`` or ``{"ok": false, "error": "..."}``. It exists only when the device runs
simulated drivers; real drivers are never reachable through it. The server thread only
hands input to the simulators, which enqueue like real hardware.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from entrada.errors import DriverError, EntradaError

logger = logging.getLogger(__name__)

MAX_LINE = 4096


def socket_path(run_dir: Path, device_id: str) -> Path:
    return Path(run_dir) / "sim" / f"{device_id}.sock"


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            reply = self.server.channel.dispatch(line)
            try:
                self.wfile.write(json.dumps(reply).encode() + b"\n")
            except OSError:
                return


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    channel: SimChannel


class SimChannel:
    """Routes verbs to the simulated drivers of one device."""

    def __init__(self, run_dir: Path, device_id: str, simulators: dict[str, Any]) -> None:
        self.path = socket_path(run_dir, device_id)
        self.simulators = simulators
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        server = _Server(str(self.path), _Handler)
        server.channel = self
        os.chmod(self.path, 0o660)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            name="sim-channel",
            kwargs={"poll_interval": 0.2},
            daemon=True,
        )
        self._thread.start()
        logger.info("simulator channel at %s (%s)", self.path, ", ".join(sorted(self.simulators)))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def dispatch(self, line: bytes) -> dict[str, Any]:
        """Carry out one request line; bad input is answered, never raised."""
        if len(line) > MAX_LINE:
            return {"ok": False, "error": "request too long"}
        try:
            req = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return {"ok": False, "error": f"not JSON: {err}"}
        if not isinstance(req, dict):
            return {"ok": False, "error": "request must be a JSON object"}
        verb = req.get("verb")
        try:
            if verb == "tap":
                reader = self._sim("rfid")
                reader.inject(str(req.get("uid", "")))
            elif verb == "press":
                self._sim("buttons").press(str(req.get("button", "")))
            elif verb == "scan":
                code = req.get("code")
                if not isinstance(code, str):
                    return {"ok": False, "error": "code must be a string"}
                self._sim("scanner").scan(code)
            elif verb == "rotate":
                self._sim("rotation").rotate()
            elif verb == "reader":
                reader = self._sim("rfid")
                reader.offline = not bool(req.get("online", True))
            elif verb == "clock":
                return self._clock(req)
            elif verb == "printer":
                return self._printer(req)
            else:
                return {
                    "ok": False,
                    "error": f"unknown verb {verb!r} (tap, press, scan, rotate, reader, clock, "
                    "printer)",
                }
        except (ValueError, DriverError, EntradaError) as err:
            return {"ok": False, "error": str(err)}
        return {"ok": True}

    def _clock(self, req: dict[str, Any]) -> dict[str, Any]:
        """``{"verb": "clock", "set": T, "speed": x}`` or ``{"advance": s}``; answers the
        time. ``speed``: simulated seconds per real second from now on."""
        clock = self._sim("clock")
        wall, step, speed = req.get("set"), req.get("advance"), req.get("speed")
        if speed is not None and wall is None:
            wall = clock.time()
        for name, value in (("set", wall), ("advance", step), ("speed", speed)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value != value
            ):
                return {"ok": False, "error": f"{name} must be a number of seconds"}
        if speed is not None and not 0 < speed <= 10_000:
            return {"ok": False, "error": "speed must be above 0 and at most 10000"}
        if wall is not None:
            clock.set(float(wall), None if speed is None else float(speed))
        if step is not None:
            clock.advance(float(step))
        return {"ok": True, "time": clock.time()}

    def _printer(self, req: dict[str, Any]) -> dict[str, Any]:
        """Set the simulated printer's faults; answers the faults it reports now."""
        printer = self._sim("printer")
        cover, offline, fail = req.get("cover"), req.get("offline"), req.get("fail_next_print")
        if cover is not None and cover not in ("open", "closed"):
            return {"ok": False, "error": "cover must be open or closed"}
        for name, value in (("offline", offline), ("fail_next_print", fail)):
            if value is not None and not isinstance(value, bool):
                return {"ok": False, "error": f"{name} must be true or false"}
        if req.get("paper") is not None:
            printer.paper = str(req["paper"])  # ValueError names the choices
        if cover is not None:
            printer.cover_open = cover == "open"
        if offline is not None:
            printer.offline = offline
        if fail is not None:
            printer.fail_next_print = fail
        return {"ok": True, "faults": sorted(printer.status().faults)}

    def _sim(self, part: str) -> Any:
        sim = self.simulators.get(part)
        if sim is None:
            raise EntradaError(f"this device has no simulated {part}")
        return sim


class SimClient:
    """Talks to a device's simulator channel (CLI, demo, tests)."""

    def __init__(self, run_dir: Path, device_id: str, timeout: float = 5.0) -> None:
        self.path = socket_path(run_dir, device_id)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file: Any = None

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError as err:
            sock.close()
            raise EntradaError(
                f"no simulator channel at {self.path}: is the device running with sim "
                f"drivers? ({err.strerror or err})"
            ) from err
        self._sock = sock
        self._file = sock.makefile("rwb")

    def request(self, **req: Any) -> dict[str, Any]:
        if self._sock is None:
            self._connect()
        try:
            self._file.write(json.dumps(req).encode() + b"\n")
            self._file.flush()
            line = self._file.readline()
        except OSError as err:
            self.close()
            raise EntradaError(f"simulator channel {self.path}: {err}") from err
        if not line:
            self.close()
            raise EntradaError(f"simulator channel {self.path} closed")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def tap(self, uid: str) -> dict[str, Any]:
        return self.request(verb="tap", uid=uid)

    def press(self, button: str) -> dict[str, Any]:
        return self.request(verb="press", button=button)

    def scan(self, code: str) -> dict[str, Any]:
        return self.request(verb="scan", code=code)

    def rotate(self) -> dict[str, Any]:
        return self.request(verb="rotate")

    def set_clock(self, wall: float, speed: float | None = None) -> dict[str, Any]:
        return self.request(verb="clock", set=wall, speed=speed)

    def close(self) -> None:
        for closer in (self._file, self._sock):
            if closer is not None:
                with contextlib.suppress(OSError):
                    closer.close()
        self._sock = None
        self._file = None
