"""The local RTSP hop: ffmpeg's requests get the credentials on their way to the server."""
from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading

import pytest

from havatar_streaming.rtsp_auth_hop import RtspAuthHop, add_authorization, socket_owner

FRAME = b'$\x01\x00\x05hello'  # interleaved data: channel 1, five bytes


def test_authorization_replaces_any_given_and_the_request_line_names_the_server():
    head = (b'SETUP rtsp://127.0.0.1:4000/robot1/trackID=0 RTSP/1.0\r\nCSeq: 3\r\n'
            b'authorization: Basic bWU6bWU=')
    out = add_authorization(head, b'Basic eDp5', b'rtsp://127.0.0.1:4000',
                            b'rtsp://media.example.org:8554').split(b'\r\n')
    assert out == [b'SETUP rtsp://media.example.org:8554/robot1/trackID=0 RTSP/1.0',
                   b'Authorization: Basic eDp5', b'CSeq: 3']


def test_socket_owner_reads_the_uid_of_a_loopback_socket(tmp_path):
    table = tmp_path / 'tcp'
    table.write_text(
        '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n'
        '   0: 0100007F:1F90 0100007F:A0B2 01 00000000:00000000 00:00000000 00000000  1000 '
        '0 123 1\n')
    assert socket_owner('127.0.0.1', 0x1F90, str(table)) == 1000
    assert socket_owner('127.0.0.1', 0x1F91, str(table)) is None
    with socket.create_server(('127.0.0.1', 0)) as server:
        assert socket_owner('127.0.0.1', server.getsockname()[1]) == os.getuid()


class FakeServer:
    """An RTSP server that records what it receives and answers once it has it all."""

    def __init__(self, expected: int) -> None:
        self.sock = socket.create_server(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.expected = expected
        self.received = b''
        self.connections = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                while len(self.received) < self.expected:
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.received += data
                conn.sendall(b'RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n')


@pytest.fixture
def hop_and_server():
    server = FakeServer(expected=0)
    hop = RtspAuthHop(f'rtsp://127.0.0.1:{server.port}', 'robot1', 'p@ss:word')
    hop.start()
    yield hop, server
    hop.stop()
    server.sock.close()


def test_requests_get_the_credentials_and_data_passes_unchanged(hop_and_server):
    hop, server = hop_and_server
    url = hop.url('robot1')
    requests = (f'ANNOUNCE {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 5\r\n\r\nv=0\r\n'.encode()
                + FRAME + f'RECORD {url} RTSP/1.0\r\nCSeq: 2\r\n\r\n'.encode())
    basic = base64.b64encode(b'robot1:p@ss:word')
    upstream = f'rtsp://127.0.0.1:{server.port}/robot1'.encode()
    server.expected = len(requests) + 2 * len(b'Authorization: Basic \r\n' + basic) \
        + 2 * (len(upstream) - len(url))
    with socket.create_connection(('127.0.0.1', hop.local_port), timeout=5) as client:
        client.sendall(requests[:7])  # split anywhere: the hop reassembles
        client.sendall(requests[7:])
        assert client.recv(100).startswith(b'RTSP/1.0 200 OK')
    auth = b'Authorization: Basic ' + basic
    assert server.received == (
        b'ANNOUNCE ' + upstream + b' RTSP/1.0\r\n' + auth + b'\r\nCSeq: 1\r\nContent-Length: 5'
        b'\r\n\r\nv=0\r\n' + FRAME + b'RECORD ' + upstream + b' RTSP/1.0\r\n' + auth
        + b'\r\nCSeq: 2\r\n\r\n')


SYSTEM_PYTHON = '/usr/bin/python3'  # one that another user may run (the venv's may not be)


@pytest.mark.skipif(os.getuid() != 0 or not os.access(SYSTEM_PYTHON, os.X_OK),
                    reason='connecting as another user needs root and a system Python')
def test_another_local_user_cannot_borrow_the_credentials(hop_and_server):
    hop, server = hop_and_server
    probe = ('import socket, sys\n'
             f's = socket.create_connection(("127.0.0.1", {hop.local_port}), timeout=5)\n'
             f's.sendall(b"OPTIONS {hop.url("robot1")} RTSP/1.0\\r\\nCSeq: 1\\r\\n\\r\\n")\n'
             'try:\n    answer = s.recv(100)\n'
             'except ConnectionResetError:\n    answer = b""\n'
             'sys.stdout.write(repr(answer))\n')
    result = subprocess.run([SYSTEM_PYTHON, '-c', probe], user=65534, group=65534,
                            capture_output=True, text=True, timeout=20)
    assert result.stdout == "b''", result.stderr  # closed without an answer
    assert hop.refused == 1 and server.connections == 0


def test_a_stopped_hop_leaves_no_thread_and_no_file_descriptor():
    def resources() -> tuple[int, int]:
        return threading.active_count(), len(os.listdir('/proc/self/fd'))
    before = resources()
    for _ in range(5):
        hop = RtspAuthHop('rtsp://127.0.0.1:9', 'robot1', 'pw')
        hop.start()
        with socket.create_connection(('127.0.0.1', hop.local_port), timeout=5):
            pass
        hop.stop()
    assert resources() == before
