"""docker/mediamtx.yml loads in the real MediaMTX, enforces the hook for publishing, and
serves RTSPS only, with a certificate made by docker/media-cert.sh: a robot publishes to
it over RTSPS, trusting that certificate through ``server_ca_file``.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from aiohttp import web
from rclpy.qos import QoSDurabilityPolicy, QoSProfile

from havatar_msgs.msg import StreamStatus
from havatar_streaming.mediamtx_api import ApiError, MediaMtxApi
from havatar_testing import WORKSPACE, ManagedProcess, find_program, free_port, port_is_open, wait_until
from havatar_testing.streaming import push_test_pattern

ADMIN = 'admin-token'
ROBOT, ROBOT_TOKEN = 'robot1', 'token1'
LATCHED = QoSProfile(depth=5, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


def media_cert(directory: Path, *names: str) -> tuple[Path, Path]:
    """The certificate and key the shipped script makes for ``names``."""
    subprocess.run(['bash', WORKSPACE / 'docker' / 'media-cert.sh', '--dir', directory, *names],
                   check=True, capture_output=True, timeout=30)
    return directory / 'server.crt', directory / 'server.key'


class Shipped:
    """MediaMTX running docker/mediamtx.yml, listeners moved to loopback ports."""

    def __init__(self, process: ManagedProcess, ports: dict[str, int], cert: Path) -> None:
        self.process, self.ports, self.cert = process, ports, cert
        self.api = MediaMtxApi(f'http://127.0.0.1:{ports["apiAddress"]}', 'admin', ADMIN)

    def api_get(self, path: str) -> dict:
        request = urllib.request.Request(f'http://127.0.0.1:{self.ports["apiAddress"]}{path}',
                                         headers={'Authorization': f'Bearer {ADMIN}'})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def rtsps_url(self, user: str = '', password: str = '') -> str:
        auth = f'{user}:{password}@' if user else ''
        return f'rtsps://{auth}127.0.0.1:{self.ports["rtspsAddress"]}'


def local_copy(tmp_path: Path, auth_port: int, cert: Path, key: Path) -> tuple[Path, dict[str, int]]:
    """The shipped config with every listener moved to a free loopback port, the hook on
    ``auth_port`` and the certificate files at ``cert`` and ``key`` (instead of /certs).
    """
    config = yaml.safe_load((WORKSPACE / 'docker' / 'mediamtx.yml').read_text())
    ports = {key: free_port() for key in ('apiAddress', 'metricsAddress', 'rtspAddress', 'rtspsAddress',
                                          'hlsAddress', 'webrtcAddress')}
    config.update({key: f'127.0.0.1:{port}' for key, port in ports.items()})
    config['webrtcLocalUDPAddress'] = f'127.0.0.1:{free_port()}'
    config['webrtcLocalTCPAddress'] = f'127.0.0.1:{free_port()}'
    config['webrtcICEServers2'] = []
    config['authHTTPAddress'] = f'http://127.0.0.1:{auth_port}/mediamtx/auth'
    assert (config['rtspServerCert'], config['rtspServerKey']) == ('/certs/server.crt', '/certs/server.key')
    config.update(rtspServerCert=str(cert), rtspServerKey=str(key))
    path = tmp_path / 'mediamtx.yml'
    path.write_text(yaml.safe_dump(config))
    return path, ports


@pytest.fixture
def hook() -> Iterator[tuple[int, list[dict]]]:
    """A stand-in for the relay's hook: robot1 publishes with token1, the API needs ADMIN."""
    requests: list[dict] = []
    port = free_port()

    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        requests.append(body)
        ok = body['user'] == ROBOT and body['password'] == ROBOT_TOKEN and body['path'] == ROBOT
        admin = body['action'] == 'api' and ADMIN in (body['password'], body.get('token'))
        return web.Response(status=200 if ok or admin else 401)

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post('/mediamtx/auth', answer)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, '127.0.0.1', port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port, requests
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


@pytest.fixture
def shipped(processes, tmp_path, hook) -> Shipped:
    cert, key = media_cert(tmp_path / 'certs', '127.0.0.1', 'localhost')
    config, ports = local_copy(tmp_path, hook[0], cert, key)
    server = processes.start('mediamtx', [find_program('mediamtx'), config])
    server.wait_for_http(f'http://127.0.0.1:{ports["apiAddress"]}/v3/paths/list', timeout=15)
    wait_until(lambda: port_is_open(ports['rtspsAddress']), timeout=10, what='the RTSPS listener')
    return Shipped(server, ports, cert)


def test_shipped_config_loads_and_asks_the_hook(processes, shipped, hook):
    _, requests = hook
    assert not port_is_open(shipped.ports['rtspAddress']), 'no plain RTSP listener'
    refused = push_test_pattern(processes, f'{shipped.rtsps_url(ROBOT, "wrong")}/{ROBOT}', 'bad')
    assert refused.wait_exit(timeout=20) != 0
    good = push_test_pattern(processes, f'{shipped.rtsps_url(ROBOT, ROBOT_TOKEN)}/{ROBOT}', 'good')
    with pytest.raises(ApiError, match='401'):  # the shipped config asks the hook for the API too
        MediaMtxApi(f'http://127.0.0.1:{shipped.ports["apiAddress"]}').path(ROBOT)
    good.wait_for(lambda: shipped.api.path(ROBOT).ready, timeout=20, what='robot1 ready')
    result = subprocess.run([find_program('ffprobe'), '-v', 'error', '-rtsp_transport', 'tcp',
                             '-show_streams', f'{shipped.rtsps_url(ROBOT, ROBOT_TOKEN)}/{ROBOT}'],
                            capture_output=True, text=True, timeout=30)
    assert 'codec_name=h264' in result.stdout, result.stderr
    assert {(r['action'], r['path']) for r in requests} >= {('publish', ROBOT), ('read', ROBOT)}
    config_errors = [line for line in shipped.process.output().splitlines()
                     if 'ERR' in line and 'path not found' not in line]
    assert not config_errors


def test_a_robot_publishes_over_rtsps_trusting_the_made_certificate(shipped, sources, streaming_node, ros_node):
    """The robot's streaming node, as docs/server-setup.md configures it for the Compose
    stack: rtsps://, the API not used, the self-signed certificate as server_ca_file.
    """
    sources()
    node, _ = streaming_node(password=ROBOT_TOKEN, server_url=shipped.rtsps_url(), api_url='none',
                             stream_key=ROBOT, stream_user=ROBOT, server_ca_file=str(shipped.cert),
                             mode='server')
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.active_mode == 'server' and not m.fallback_active, timeout=40,
                    what='server mode over RTSPS')
    wait_until(lambda: shipped.api.path(ROBOT).ready, timeout=20, what='robot1 ready')
    sessions = shipped.api_get('/v3/rtspssessions/list')['items']
    assert [s['path'] for s in sessions if s.get('state') == 'publish'] == [ROBOT]
    assert ROBOT_TOKEN not in node.output()
