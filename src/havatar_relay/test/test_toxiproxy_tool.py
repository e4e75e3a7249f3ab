"""The Toxiproxy test tool against a TCP echo server: each fault does what the suite needs.

These tests pin the behaviour of the pinned Toxiproxy (and of the client in
havatar_testing.toxiproxy) that the network fault tests between robot, relay and Redis
rely on. Timing bounds are generous: the machine is shared and noisy.
"""
from __future__ import annotations

import socket
import socketserver
import threading
import time
from typing import Iterator

import pytest

from havatar_testing import wait_until
from havatar_testing.toxiproxy import Proxy, ToxiproxyServer

pytestmark = pytest.mark.timeout(60)


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every byte back; counts the connections that are open on its side."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(('127.0.0.1', 0), EchoHandler)
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def open_count(self) -> int:
        with self.lock:
            return len(self.open)


class EchoHandler(socketserver.BaseRequestHandler):
    server: EchoServer

    def handle(self) -> None:
        with self.server.lock:
            self.server.open.add(self.request)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass
        finally:
            with self.server.lock:
                self.server.open.discard(self.request)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        with server.lock:
            for conn in list(server.open):
                conn.close()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def proxy(toxiproxy: ToxiproxyServer, echo: EchoServer) -> Proxy:
    return toxiproxy.proxy('echo', echo.port)


def connect(proxy: Proxy, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(proxy.address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def receive(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes (fails on EOF or on the socket's timeout)."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f'connection closed after {len(data)} of {size} bytes')
        data += chunk
    return bytes(data)


def round_trip(sock: socket.socket, payload: bytes = b'ping') -> float:
    """Seconds for ``payload`` to come back through the echo server."""
    start = time.monotonic()
    sock.sendall(payload)
    assert receive(sock, len(payload)) == payload
    return time.monotonic() - start


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """True when the peer closes (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b''
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_clean_proxy_passes_data_both_ways(toxiproxy: ToxiproxyServer, proxy: Proxy) -> None:
    assert toxiproxy.version() == '2.12.0'
    with connect(proxy) as sock:
        assert round_trip(sock, b'hello') < 1.0
        payload = bytes(range(256)) * 64
        sock.sendall(payload)
        assert receive(sock, len(payload)) == payload


def test_latency_with_jitter_shows_in_the_round_trip(proxy: Proxy) -> None:
    with connect(proxy) as sock:
        baseline = min(round_trip(sock) for _ in range(3))
        toxic = proxy.latency(300, jitter=100)  # acts on the open connection too
        delayed = [round_trip(sock) for _ in range(4)]
        toxic.remove()
        after = min(round_trip(sock) for _ in range(3))
    print(f'round trip: baseline {baseline * 1000:.1f} ms, with latency '
          f'{[round(d * 1000) for d in delayed]} ms, after {after * 1000:.1f} ms')
    assert baseline < 0.15
    assert all(0.19 <= d <= 2.0 for d in delayed), delayed  # 300 +- 100 ms, one way
    assert after < 0.15


def test_black_hole_drops_data_and_keeps_the_connection_open(
        proxy: Proxy, echo: EchoServer) -> None:
    with connect(proxy) as sock:
        round_trip(sock)
        hole = proxy.black_hole()
        sock.sendall(b'into the void')  # the write succeeds: the proxy takes the bytes
        start = time.monotonic()
        sock.settimeout(1.5)
        with pytest.raises(socket.timeout):  # no data and no EOF: the connection stays open
            sock.recv(100)
        silent_for = time.monotonic() - start
        assert silent_for >= 1.4
        assert echo.open_count() == 1  # the server side of the connection is open as well
        print(f'black hole: nothing came back and nothing closed for {silent_for:.2f} s')
        hole.remove()  # Toxiproxy closes the connections that were in the hole
        assert closed_by_peer(sock, within=5.0)
    with connect(proxy) as fresh:
        assert round_trip(fresh) < 1.0


def test_reset_peer_resets_the_client(proxy: Proxy) -> None:
    proxy.reset_peer()
    with connect(proxy) as sock:
        sock.sendall(b'ping')
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_bandwidth_limit_slows_a_transfer(proxy: Proxy) -> None:
    payload = bytes(200_000)

    def transfer() -> float:
        with connect(proxy, timeout=15) as sock:
            sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
            start = time.monotonic()
            sender.start()
            receive(sock, len(payload))
            elapsed = time.monotonic() - start
            sender.join(timeout=5)
            return elapsed

    unlimited = transfer()
    proxy.bandwidth(100)  # 100 KB/s back to the client: 200 kB take about 2 s
    limited = transfer()
    print(f'200 kB: {unlimited:.3f} s unlimited, {limited:.3f} s at 100 KB/s')
    assert unlimited < 1.0
    assert 1.5 <= limited <= 10.0


def test_disable_closes_connections_and_enable_lets_new_ones_through(
        proxy: Proxy, echo: EchoServer) -> None:
    with connect(proxy) as sock:
        round_trip(sock)
        proxy.disable()
        assert closed_by_peer(sock, within=5.0)
        wait_until(lambda: echo.open_count() == 0, 5, 'the server side to close')
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    proxy.enable()
    with connect(proxy) as sock:
        assert round_trip(sock) < 1.0


def test_clear_removes_every_toxic_and_enables(proxy: Proxy) -> None:
    proxy.latency(1000, stream='both')
    proxy.black_hole()
    proxy.disable()
    assert len(proxy.toxics()) == 4
    proxy.clear()
    assert proxy.toxics() == [] and proxy.info()['enabled']
    with connect(proxy) as sock:
        assert round_trip(sock) < 1.0
