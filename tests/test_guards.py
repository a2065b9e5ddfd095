import socket

import pytest

from tests.conftest import NonLoopbackConnection


def test_network_guard_refuses_non_loopback_address():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NonLoopbackConnection):
        sock.connect(("93.184.216.34", 80))


def test_network_guard_allows_loopback():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
