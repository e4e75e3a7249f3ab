"""The robot's push is encrypted whenever the server is not on loopback: RTSPS with the
server's certificate checked (a private CA trusted through ``server_ca_file``), plain RTSP
to another host refused unless ``allow_unencrypted`` says so.
"""
from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import QoSDurabilityPolicy, QoSProfile

from havatar_bringup.graph import parameter_arguments
from havatar_bringup.processes import find_program, free_port
from havatar_msgs.msg import StreamStatus
from havatar_streaming.rtsp_auth_hop import RtspAuthHop
from havatar_streaming.server_url import check_api_url, check_server_url, is_loopback
from havatar_testing import wait_until
from havatar_testing.ros import ros_executable
from havatar_testing.streaming import ROBOT, USERS

LATCHED = QoSProfile(depth=5, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
REMOTE = '192.0.2.1'  # TEST-NET-1: never reached, only judged


def self_signed(directory: Path, san: str = 'IP:127.0.0.1,DNS:localhost') -> tuple[Path, Path]:
    """A fresh self-signed certificate for ``san`` and its key (PEM files)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / 'server.crt', directory / 'server.key'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=havatar-test',
                    '-addext', f'subjectAltName={san}', '-keyout', key, '-out', cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.mark.parametrize('host, loopback', [
    ('127.0.0.1', True), ('127.8.0.1', True), ('::1', True), ('localhost', True),
    ('LOCALHOST', True), ('192.0.2.1', False), ('media.example.org', False), ('', False),
    ('localhost.example.org', False)])
def test_loopback_is_judged_from_the_literal_host(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize('url, allow, ok', [
    ('rtsp://127.0.0.1:8554', False, True),
    ('rtsp://[::1]:8554', False, True),
    ('rtsps://media.example.org:8322', False, True),
    ('rtsp://media.example.org:8554', False, False),
    ('rtsp://media.example.org:8554', True, True),
    ('http://127.0.0.1:8554', True, False),
    ('rtsps://', False, False)])
def test_server_url_is_encrypted_unless_on_loopback_or_allowed(url, allow, ok):
    if ok:
        assert check_server_url(url, allow) == url
    else:
        with pytest.raises(ValueError, match='server_url'):
            check_server_url(url, allow)


def test_an_api_in_clear_to_another_host_is_refused_naming_api_url():
    check_api_url(None, False)
    check_api_url('http://127.0.0.1:9997', False)
    check_api_url('https://media.example.org:9997', False)
    check_api_url('http://media.example.org:9997', True)
    with pytest.raises(ValueError, match="api_url.*'none'"):
        check_api_url('http://media.example.org:9997', False)


class TlsRecorder:
    """A TCP server recording the raw bytes a client sends; with a certificate it speaks
    TLS and records what arrives decrypted; without, it closes after the first bytes.
    """

    def __init__(self, cert: Path | None = None, key: Path | None = None) -> None:
        self.sock = socket.create_server(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.context = None
        if cert is not None:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(cert, key)
        self.received = b''
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.context is not None:
                    conn = self.context.wrap_socket(conn, server_side=True)
                conn.settimeout(5)
                while data := conn.recv(65536):
                    self.received += data
                    if self.context is None:
                        break
                    if b'\r\n\r\n' in self.received:
                        conn.sendall(b'RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n')
            except OSError:
                pass
            finally:
                conn.close()


def ask_through(hop: RtspAuthHop) -> bytes:
    with socket.create_connection(('127.0.0.1', hop.local_port), timeout=5) as client:
        client.sendall(f'OPTIONS {hop.url("robot1")} RTSP/1.0\r\nCSeq: 1\r\n\r\n'.encode())
        try:
            return client.recv(100)
        except ConnectionResetError:  # closed by the hop
            return b''


@pytest.mark.parametrize('trusted_san, expected', [
    (None, 'certificate'),                      # nobody vouches for it
    ('DNS:media.example.org', 'certificate'),   # trusted, but for another host
])
def test_the_hop_sends_nothing_to_a_server_whose_certificate_fails(tmp_path, trusted_san, expected):
    cert, key = self_signed(tmp_path / 'server', 'DNS:media.example.org' if trusted_san else
                            'IP:127.0.0.1')
    server = TlsRecorder(cert, key)
    hop = RtspAuthHop(f'rtsps://127.0.0.1:{server.port}', 'robot1', 'hop-secret',
                      ca_file=str(cert) if trusted_san else '')
    hop.start()
    try:
        assert ask_through(hop) == b''
        wait_until(lambda: hop.last_error, timeout=5, what='the hop to give up')
    finally:
        hop.stop()
        server.sock.close()
    assert expected in hop.last_error and f'127.0.0.1:{server.port}' in hop.last_error
    assert server.received == b''  # not a byte of RTSP, let alone the password


def test_the_hop_speaks_tls_to_a_server_it_trusts_and_never_clear_text(tmp_path):
    cert, key = self_signed(tmp_path / 'server')
    server = TlsRecorder(cert, key)
    hop = RtspAuthHop(f'rtsps://127.0.0.1:{server.port}', 'robot1', 'hop-secret', ca_file=str(cert))
    hop.start()
    try:
        assert ask_through(hop).startswith(b'RTSP/1.0 200 OK')
    finally:
        hop.stop()
        server.sock.close()
    assert server.received.startswith(f'OPTIONS rtsps://127.0.0.1:{server.port}/robot1'.encode())
    assert b'Authorization: Basic' in server.received and hop.last_error == ''

    plain = TlsRecorder()  # what reaches the wire: a TLS handshake, no RTSP
    hop = RtspAuthHop(f'rtsps://127.0.0.1:{plain.port}', 'robot1', 'hop-secret', ca_file=str(cert))
    hop.start()
    try:
        ask_through(hop)
        wait_until(lambda: plain.received, timeout=5, what='the client hello')
    finally:
        hop.stop()
        plain.sock.close()
    assert plain.received[:1] == b'\x16' and b'OPTIONS' not in plain.received


# -- the streaming node against a real MediaMTX speaking only RTSPS

@pytest.fixture
def rtsps_server(mediamtx_factory, tmp_path):
    cert, key = self_signed(tmp_path / 'tls')
    port = free_port()
    server = mediamtx_factory(users=USERS, overrides={
        'rtspEncryption': 'strict', 'rtspsAddress': f'127.0.0.1:{port}',
        'rtspServerKey': str(key), 'rtspServerCert': str(cert)})
    return server, f'rtsps://127.0.0.1:{port}', cert


def rtsps_sessions(server) -> list[dict]:
    return server.api_get('/v3/rtspssessions/list').get('items', [])


def test_the_node_publishes_over_rtsps_to_a_server_signed_by_its_ca(
        rtsps_server, sources, streaming_node, ros_node):
    """The certificate is self-signed: trusted only through server_ca_file."""
    server, url, cert = rtsps_server
    sources()
    node, _ = streaming_node(server, server_url=url, server_ca_file=str(cert), mode='server')
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.active_mode == 'server' and not m.fallback_active, timeout=40,
                    what='server mode over RTSPS')
    assert server.path_ready(ROBOT.path)
    publishing = [s for s in rtsps_sessions(server) if s.get('state') == 'publish']
    assert [s['path'] for s in publishing] == [ROBOT.path]
    first = publishing[0]['bytesReceived']
    wait_until(lambda: [s['bytesReceived'] for s in rtsps_sessions(server)
                        if s.get('state') == 'publish'][0] > first + 10_000,
               timeout=10, what='media flowing over RTSPS')
    probe = subprocess.run(
        [find_program('ffprobe'), '-v', 'error', '-rtsp_transport', 'tcp',  # TLS unchecked
         '-show_entries', 'stream=codec_name', '-of', 'csv=p=0',
         f'rtsps://viewer:viewer-secret@127.0.0.1:{url.rsplit(":", 1)[1]}/{ROBOT.path}'],
        capture_output=True, text=True, timeout=30)
    assert set(probe.stdout.split()) == {'h264', 'opus'}, probe.stderr
    assert ROBOT.password not in node.output()


def test_the_node_refuses_a_server_certificate_it_does_not_trust(
        rtsps_server, sources, streaming_node, ros_node):
    server, url, _ = rtsps_server
    sources()
    node, _ = streaming_node(server, server_url=url, mode='server', retry_min=0.5, retry_max=1.0)
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    msg = status.wait_for(lambda m: m.fallback_active and m.last_error, timeout=30,
                          what='a fall back to local')
    assert 'certificate' in msg.last_error and msg.active_mode == 'local', msg.last_error
    node.wait_for_output('server mode failed: TLS certificate of 127.0.0.1', timeout=10)
    assert not server.path_ready(ROBOT.path)
    assert not [s for s in rtsps_sessions(server) if s.get('state') == 'publish']
    assert ROBOT.password not in node.output()


def start_node(processes, **params: object):
    return processes.start('streaming_node', [
        ros_executable('havatar_streaming', 'streaming_node'), '--ros-args',
        *parameter_arguments({'mjpeg_host': '127.0.0.1', 'mjpeg_port': free_port(), **params})],
        env={'HAVATAR_ACCESS_TOKEN': 'rtsps-test-token'})


def test_clear_rtsp_to_another_host_is_refused_at_start_unless_allowed(processes):
    refused = start_node(processes, server_url=f'rtsp://{REMOTE}:8554', api_url='none')
    assert refused.wait_exit(timeout=30) == 2
    assert 'server_url' in refused.output() and 'allow_unencrypted' in refused.output()

    allowed = start_node(processes, server_url=f'rtsp://{REMOTE}:8554', api_url='none',
                         allow_unencrypted=True)
    allowed.wait_for_output('MJPEG on', timeout=30)
    assert 'WARN' in allowed.output() and 'allow_unencrypted is true' in allowed.output()
    assert REMOTE in allowed.output()


def test_clear_rtsp_to_another_host_is_refused_at_run_time(streaming_node, ros_node):
    node, _ = streaming_node()
    client = ros_node.node.create_client(SetParameters, '/streaming_node/set_parameters')

    def set_url(url: str):
        request = SetParameters.Request(
            parameters=[Parameter('server_url', value=url).to_parameter_msg()])
        return ros_node.call(client, request, timeout=15).results[0]

    clear = set_url(f'rtsp://{REMOTE}:8554')
    assert not clear.successful and 'allow_unencrypted' in clear.reason
    api = set_url(f'rtsps://{REMOTE}:8322')  # the API would default to http://<host>:9997
    assert not api.successful and 'api_url' in api.reason
    node.wait_for_output('refused: parameter server_url', timeout=10)
    assert set_url('rtsps://localhost:8322').successful
