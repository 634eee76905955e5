"""The link turns Nagle's algorithm off on its socket (small batches and acks go now)."""

import queue
import socket

from entrada.broker import PrivateBroker
from entrada.mqtt import LinkUp, MqttLink
from entrada.settings_common import MqttSection


def test_link_socket_has_nodelay(tmp_path):
    with PrivateBroker(tmp_path) as broker:
        events: queue.Queue[object] = queue.Queue()
        link = MqttLink("nodelay", MqttSection(port=broker.port), events.put)
        link.start()
        try:
            assert isinstance(events.get(timeout=10), LinkUp)
            sock = link._client.socket()
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        finally:
            link.stop()
