"""``entrada central``: the central service as a process (signals, exit codes, the API).

The service itself (:class:`central.service.CentralService`) is a thread with its own
lifecycle, so tests and the demo can run it in-process; this module adds what only a
process needs: the config file, logging, SIGTERM/SIGINT and the optional HTTP API.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from types import FrameType

from central.service import EXIT_CONFIG, EXIT_FAILURE, CentralService, load_central_config
from entrada.errors import ConfigError, EntradaError
from entrada.logutil import configure as configure_logging

logger = logging.getLogger(__name__)


def run_central(config_path: str) -> int:
    """Run the central service until SIGTERM/SIGINT. Exit codes: 0 clean stop, 1 failure,
    2 invalid config (every error printed to stderr)."""
    try:
        cfg = load_central_config(config_path)
    except ConfigError as err:
        sys.stderr.write(f"{err}\n")
        return EXIT_CONFIG
    configure_logging(cfg.log.level)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    clock = time.time
    if cfg.central.clock == "sim":
        from controller.clock import SimClock

        clock = SimClock.on_time_line(cfg.simtime).time
    service = CentralService(cfg, clock=clock)
    try:
        api = None
        try:
            service.start()
            if cfg.api.enabled:
                from central.api import ApiServer, create_app  # FastAPI only when asked for

                app = create_app(service.db_path, service=service)
                api = ApiServer(app, cfg.api.host, cfg.api.port)
                api.start()
        except EntradaError as err:
            logger.error("%s", err)
            service.stop()
            return EXIT_FAILURE
        while not stop.wait(0.5):
            if not service.running:
                break
        if api is not None:
            api.stop()
        service.stop()
        return EXIT_FAILURE if service.error is not None else 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
