"""The connection test of the settings form against a real MediaMTX, a closed port, a name
that does not resolve, a server that never answers, a server that is not RTSP and an RTSPS
server whose certificate is or is not trusted.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import pytest

from havatar_bringup.processes import free_port
from havatar_streaming.server_probe import ProbeSettings, probe
from havatar_testing.streaming import ROBOT, USERS, push_test_pattern


def run(settings: ProbeSettings, **timeouts: float):
    return asyncio.run(asyncio.wait_for(probe(settings, **timeouts), 30))


def robot(url: str, password: str = ROBOT.password, **extra: object) -> ProbeSettings:
    return ProbeSettings(server_url=url, stream_key=ROBOT.path, password=password, user=ROBOT.user,
                         **extra)


@pytest.fixture
def mediamtx(mediamtx_factory):
    return mediamtx_factory(users=USERS)


def test_right_and_wrong_credentials_on_a_real_mediamtx(mediamtx, processes):
    url = f'rtsp://127.0.0.1:{mediamtx.ports.rtsp}'
    result = run(robot(url, api_url=mediamtx.api_url('')))
    assert result.ok and result.error == '', result
    # nobody publishes: the on-demand robot path holds the DESCRIBE it let in
    assert result.steps[-2:] == [f'RTSP credentials of {ROBOT.user!r} accepted (the path waits for the robot '
                                 'to publish)',
                                 f"MediaMTX API at {mediamtx.api_url('')} answers"]
    wrong = run(robot(url, password='not-the-password', api_url='none'))
    assert not wrong.ok and wrong.error == 'unauthorized' and '401' in wrong.msg, wrong
    # a robot publishing there is neither refused nor disturbed by the test
    publisher = push_test_pattern(processes, mediamtx.rtsp_url(ROBOT.path, ROBOT.user, ROBOT.password))
    publisher.wait_for(lambda: mediamtx.path_ready(ROBOT.path), timeout=20, what='the test pattern published')
    live = run(robot(url, api_url='none'))
    assert live.ok and 'being published' in live.msg, live
    assert mediamtx.path_ready(ROBOT.path) and publisher.running()


def test_a_closed_port_an_unknown_name_and_a_silent_server():
    closed = run(robot(f'rtsp://127.0.0.1:{free_port()}', api_url='none'))
    assert not closed.ok and closed.error == 'refused' and 'refused the connection' in closed.msg
    unknown = run(robot('rtsps://no-such-host.invalid:8322', api_url='none'))
    assert not unknown.ok and unknown.error == 'dns' and 'no-such-host.invalid' in unknown.msg, unknown
    with socket.create_server(('127.0.0.1', 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        result = run(robot(f'rtsp://127.0.0.1:{port}', api_url='none'), rtsp_timeout=0.5)
    assert not result.ok and result.error == 'timeout' and 'did not answer RTSP' in result.msg, result
    assert result.steps == ['127.0.0.1 is 127.0.0.1', 'connected to 127.0.0.1:%d' % port]


def test_a_port_that_is_not_rtsp(mediamtx):
    result = run(robot(f'rtsp://127.0.0.1:{mediamtx.ports.api}', api_url='none'))
    assert not result.ok and result.error == 'protocol' and 'wrong port' in result.msg, result


def test_settings_the_streaming_node_would_refuse_are_reported_before_any_connection():
    web = run(robot('https://media.example.org'))  # mapped; the API would be asked in clear
    assert not web.ok and web.error == 'invalid' and 'api_url' in web.msg and web.steps == []
    assert web.server_url == 'rtsps://media.example.org:8322'
    clear = run(robot('rtsp://media.example.org:8554', api_url='none'))
    assert not clear.ok and clear.error == 'invalid' and 'unencrypted' in clear.msg
    assert run(robot('', api_url='none')).msg == 'no server URL entered'


def self_signed(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / 'server.crt', directory / 'server.key'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                    '-nodes', '-days', '1', '-subj', '/CN=havatar-test', '-addext',
                    'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def test_an_rtsps_certificate_that_is_not_trusted_and_one_that_is(mediamtx_factory, tmp_path):
    cert, key = self_signed(tmp_path / 'tls')
    port = free_port()
    mediamtx_factory(users=USERS, overrides={'rtspEncryption': 'strict', 'rtspsAddress': f'127.0.0.1:{port}',
                                             'rtspServerKey': str(key), 'rtspServerCert': str(cert)})
    url = f'rtsps://127.0.0.1:{port}'
    untrusted = run(robot(url, api_url='none'))
    assert not untrusted.ok and untrusted.error == 'tls' and 'certificate' in untrusted.msg, untrusted
    trusted = run(robot(url, api_url='none', ca_file=str(cert)))
    assert trusted.ok and 'TLS certificate accepted' in trusted.msg, trusted
