"""A private Mosquitto broker on a free loopback port, for the demo, tests and benchmarks.

It writes its own config (with deliberate queue limits: Mosquitto's default
``max_queued_messages 1000`` silently drops QoS 1 messages to a subscriber that falls
behind) and can be SIGKILLed and restarted on the same port to rehearse outages.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from entrada.errors import EntradaError

logger = logging.getLogger(__name__)

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str:
    """Path of the mosquitto binary, or EntradaError telling how to install it."""
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise EntradaError(
        "mosquitto not found: install it with `sudo apt-get install mosquitto` "
        "(scripts/setup.sh does this)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.02)
    return False


def broker_conf(port: int, data_dir: Path, persistence: bool, extra: str = "") -> str:
    return "\n".join(
        [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            # Started as root, mosquitto would switch to its own user and could not write
            # the persistence file in our folder: stay the user that owns it.
            f"user {getpass.getuser()}",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {data_dir}/",
            "autosave_interval 5",
            # Deliberate limits: a subscriber that falls behind must not lose QoS 1
            # messages silently. Producers keep durable outboxes, so memory is the bound.
            "max_queued_messages 200000",
            "max_queued_bytes 0",
            "max_inflight_messages 100",
            "message_size_limit 2097152",
            # Small packets (an event batch, an ack) go out now, not after a delayed ACK.
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages false",
            extra,
            "",
        ]
    )


class PrivateBroker:
    """Mosquitto in a subprocess; ``kill()`` is a SIGKILL, ``start()`` again reuses the port."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        persistence: bool = False,
        extra_conf: str = "",
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = Path(workdir)
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: object = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        binary = find_mosquitto()
        data = self.workdir / "broker"
        data.mkdir(parents=True, exist_ok=True)
        conf = data / "mosquitto.conf"
        conf.write_text(broker_conf(self.port, data, self.persistence, self.extra_conf))
        log = (data / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise EntradaError(f"mosquitto did not listen on {self.port}; see {data}/mosquitto.log")
        logger.info("broker listening on %s:%d", self.host, self.port)

    def kill(self) -> None:
        """SIGKILL: the broker loses whatever it had not autosaved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            logger.info("broker killed")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
