"""docker/mediamtx.yml loads in the real MediaMTX and enforces the hook for publishing."""
from __future__ import annotations

import subprocess

import pytest
import yaml
from aiohttp import web

from havatar_streaming.mediamtx_api import ApiError, MediaMtxApi
from havatar_testing import WORKSPACE, find_program, free_port

from havatar_testing.streaming import push_test_pattern


def local_copy(tmp_path, auth_port):
    """The shipped config with every listener moved to a free loopback port."""
    config = yaml.safe_load((WORKSPACE / 'docker' / 'mediamtx.yml').read_text())
    ports = {key: free_port() for key in ('apiAddress', 'metricsAddress', 'rtspAddress',
                                          'hlsAddress', 'webrtcAddress')}
    config.update({key: f'127.0.0.1:{port}' for key, port in ports.items()})
    udp = free_port()
    config['webrtcLocalUDPAddress'] = f'127.0.0.1:{udp}'
    config['webrtcLocalTCPAddress'] = f'127.0.0.1:{free_port()}'
    config['webrtcICEServers2'] = []
    config['authHTTPAddress'] = f'http://127.0.0.1:{auth_port}/mediamtx/auth'
    path = tmp_path / 'mediamtx.yml'
    path.write_text(yaml.safe_dump(config))
    return path, ports


def test_shipped_config_loads_and_asks_the_hook(processes, tmp_path):
    requests = []
    auth_port = free_port()

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        requests.append(body)
        ok = body['user'] == 'robot1' and body['password'] == 'token1' and body['path'] == 'robot1'
        admin = body['action'] == 'api' and body['password'] == 'admin-token'  # the API: admin only
        return web.Response(status=200 if ok or admin else 401)

    import asyncio
    import threading
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post('/mediamtx/auth', hook)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, '127.0.0.1', auth_port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        config, ports = local_copy(tmp_path, auth_port)
        server = processes.start('mediamtx', [find_program('mediamtx'), config])
        server.wait_for_http(f'http://127.0.0.1:{ports["apiAddress"]}/v3/paths/list', timeout=15)
        rtsp = ports['rtspAddress']
        refused = push_test_pattern(processes, f'rtsp://robot1:wrong@127.0.0.1:{rtsp}/robot1', 'bad')
        assert refused.wait_exit(timeout=20) != 0
        good = push_test_pattern(processes, f'rtsp://robot1:token1@127.0.0.1:{rtsp}/robot1', 'good')
        with pytest.raises(ApiError, match='401'):  # the shipped config asks the hook for the API too
            MediaMtxApi(f'http://127.0.0.1:{ports["apiAddress"]}').path('robot1')
        api = MediaMtxApi(f'http://127.0.0.1:{ports["apiAddress"]}', 'admin', 'admin-token')
        good.wait_for(lambda: api.path('robot1').ready, timeout=20, what='robot1 ready')
        result = subprocess.run([find_program('ffprobe'), '-v', 'error', '-rtsp_transport', 'tcp',
                                 '-show_streams', f'rtsp://robot1:token1@127.0.0.1:{rtsp}/robot1'],
                                capture_output=True, text=True, timeout=30)
        assert 'codec_name=h264' in result.stdout, result.stderr
        assert {(r['action'], r['path']) for r in requests} >= {('publish', 'robot1'), ('read', 'robot1')}
        config_errors = [line for line in server.output().splitlines()
                         if 'ERR' in line and 'path not found' not in line]
        assert not config_errors
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
