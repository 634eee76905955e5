"""What the serial driver tests share: a pty or a TCP port standing in for the serial line
(closing the pty master or the TCP connection is what unplugging the device looks like),
and drivers made with quick retries and stopped after the test.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from typing import TypeVar

from drivers.serial_link import SerialLink

WAIT = 5.0

Driver = TypeVar("Driver", bound=SerialLink)


def chunked(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of ``size`` bytes, as a serial port may deliver it."""
    return [data[i : i + size] for i in range(0, len(data), size)]


@contextlib.contextmanager
def pty_pair() -> Iterator[tuple[int, str]]:
    """(master fd, slave tty name); the test writes to the master as the device would."""
    master, slave = os.openpty()
    name = os.ttyname(slave)
    yield master, name
    for fd in (master, slave):
        with contextlib.suppress(OSError):  # the test may have closed the master
            os.close(fd)


@contextlib.contextmanager
def quick_drivers(
    make: Callable[[str], Driver], finish: Callable[[Driver], None]
) -> Iterator[Callable[[str], Driver]]:
    """A maker of drivers on a port that retry every 0.02-0.1 s; ``finish`` ends each."""
    made: list[Driver] = []

    def quick(port: str) -> Driver:
        driver = make(port)
        driver.retry_initial, driver.retry_max = 0.02, 0.1
        made.append(driver)
        return driver

    yield quick
    for driver in made:
        finish(driver)


class PortServer:
    """A TCP port a serial-over-network device would listen on; restartable on its port."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(WAIT)
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> socket.socket:
        self.conn, _ = self.listener.accept()
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def free_port() -> int:
    """A TCP port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
