import pytest

from entrada.broker import PrivateBroker


@pytest.fixture
def broker(tmp_path):
    """A private Mosquitto on a free loopback port, stopped after the test."""
    with PrivateBroker(tmp_path) as b:
        yield b


@pytest.fixture
def central(broker):
    """The fake central of tests/controller/queue_rig.py, online with the queue board
    published; a module with a central of its own overrides it."""
    from queue_rig import FakeCentral, online_central  # sets SDL's dummy drivers: import on use

    yield from online_central(FakeCentral(broker.port))
