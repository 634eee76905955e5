import pytest

from entrada.broker import PrivateBroker


@pytest.fixture
def broker(tmp_path):
    """A private Mosquitto on a free loopback port, stopped after the test."""
    with PrivateBroker(tmp_path) as b:
        yield b
