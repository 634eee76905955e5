"""``entrada device --config FILE``: load the config, build drivers, run the runtime.

Lifecycle: config validated -> relay de-energised -> drivers ready -> store open ->
READY to systemd -> online when the broker answers (the gate admits visitors before
that, from its local catalog) -> on SIGTERM/SIGINT a clean shutdown, relay released.
The :class:`~controller.supervisor.Supervisor` runs that cycle again whenever a new config
from central (or the ``restart`` command) asks for a new runtime.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType

from controller.clock import Clock, SimClock, SystemClock
from controller.device_core import DeviceCore
from controller.runtime import DeviceRuntime
from controller.settings import DeviceConfig
from controller.simchannel import SimChannel
from controller.store import DeviceStore
from controller.supervisor import Supervisor
from entrada import config as configlib
from entrada.errors import DriverError
from entrada.logring import LogRing
from entrada.logutil import configure

logger = logging.getLogger(__name__)


EXIT_DRIVERS = 3


def _notifier() -> object:
    """systemd's notify socket, or a no-op off systemd."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return lambda _msg: None
    import sdnotify

    n = sdnotify.SystemdNotifier()
    watchdog = bool(os.environ.get("WATCHDOG_USEC"))

    def notify(msg: str) -> None:
        if msg.startswith("WATCHDOG") and not watchdog:
            return
        n.notify(msg)

    return notify


def load_device_config(path: str | Path) -> DeviceConfig:
    return configlib.load(path, DeviceConfig)


def new_clock(cfg: DeviceConfig) -> Clock:
    """The clock ``device.clock`` names (``sim``: on the ``[simtime]`` time line)."""
    return SimClock.on_time_line(cfg.simtime) if cfg.device.clock == "sim" else SystemClock()


def build_runtime(
    cfg: DeviceConfig, store: DeviceStore | None = None, clock: Clock | None = None
) -> tuple[DeviceCore, SimChannel | None]:
    """Drivers, store, runtime and (with simulated drivers only) the simulator channel.
    ``store``: an open store to use (it stays the caller's to close if the drivers fail);
    ``clock``: default :func:`new_clock`."""
    clock = clock or new_clock(cfg)
    notify = _notifier()
    runtime: DeviceCore
    sims: dict[str, object]
    if cfg.device.role == "dispenser":
        from controller.dispenser_runtime import DispenserRuntime
        from drivers.queue_registry import build_dispenser_drivers

        parts = build_dispenser_drivers(cfg.drivers)
        store = store or DeviceStore(cfg.device.data_dir / "device.db")
        runtime = DispenserRuntime(cfg, parts, store, clock=clock, notify=notify)  # type: ignore[arg-type]
        sims = _simulated(
            cfg,
            {
                "printer": parts.printer,
                "buttons": parts.buttons,
                "indicator": parts.indicator,
                "scanner": parts.scanner,
            },
        )
    elif cfg.device.role == "display":
        from controller.display_runtime import DisplayRuntime
        from drivers.queue_registry import build_sound

        sound = build_sound(cfg.drivers)
        store = store or DeviceStore(cfg.device.data_dir / "device.db")
        runtime = DisplayRuntime(cfg, store, sound, clock=clock, notify=notify)  # type: ignore[arg-type]
        sims = _simulated(cfg, {"sound": sound})
    else:
        from drivers.registry import build_drivers

        drivers = build_drivers(cfg.drivers)
        drivers.relay.release()
        store = store or DeviceStore(cfg.device.data_dir / "device.db")
        runtime = DeviceRuntime(cfg, drivers, store, clock=clock, notify=notify)  # type: ignore[arg-type]
        sims = drivers.simulators()
    if isinstance(clock, SimClock):
        sims["clock"] = clock
    channel = SimChannel(cfg.device.run_dir, cfg.device.id, sims) if sims else None
    return runtime, channel


def _simulated(cfg: DeviceConfig, parts: dict[str, object]) -> dict[str, object]:
    """The parts the config asked to simulate (the simulator channel drives them)."""
    return {
        name: part
        for name, part in parts.items()
        if part is not None and getattr(cfg.drivers, name) == "sim"
    }


def _set_log_level(cfg: DeviceConfig) -> None:
    logging.getLogger().setLevel(cfg.log.level)


def run_device(config_path: str) -> int:
    """Run until SIGTERM/SIGINT. A bad config raises ConfigError (every problem listed);
    the command line prints it and exits with entrada.cli.EXIT_CONFIG."""
    cfg = load_device_config(config_path)
    configure(cfg.log.level)
    ring = LogRing()  # the ``logs`` command's lines, secrets masked
    root = logging.getLogger()
    root.addHandler(ring)
    try:
        supervisor = Supervisor(
            config_path, build=build_runtime, logs=ring.tail, on_config=_set_log_level
        )

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            supervisor.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            supervisor.run()
        except DriverError as err:
            logger.error("drivers could not be set up: %s", err)
            return EXIT_DRIVERS
    finally:
        root.removeHandler(ring)
    return 0
