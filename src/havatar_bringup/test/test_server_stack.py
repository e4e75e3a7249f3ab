"""The shipped Caddyfile, run by Debian's Caddy in front of a real relay server and a real
MediaMTX (with the shipped authentication: the relay hook), exposes only what browsers need.

The Caddyfile is used as shipped except for its site address (plain HTTP on a free
loopback port), its upstream host names (loopback ports) and Caddy's own admin endpoint
(off): the routing is the shipped one. Every public path is tried with no token, a wrong
token and the right one; ``EXPECTED`` is the table of answers.
"""
from __future__ import annotations

import asyncio
import base64
import http.client
import json
import time
from pathlib import Path
from typing import Callable

import pytest
import yaml

from havatar_bringup.mediamtx import MediaMtxPorts, local_config, relay_auth
from havatar_bringup.processes import ProcessManager, find_program, free_port
from havatar_testing import WORKSPACE
from havatar_testing.relay import Client

CADDYFILE = WORKSPACE / 'docker' / 'Caddyfile'
ADMIN = 'admin-token-of-the-test'
WRONG = 'wrong-token'
USER = 'alice-token'  # may watch robot1 and talk to it (havatar_testing.relay.ACCOUNTS)


def local_caddyfile(shipped: str, site: str, upstreams: dict[str, str]) -> str:
    """``shipped`` with the site address and upstreams replaced, and Caddy's admin API off."""
    text = shipped.replace('{$HAVATAR_DOMAIN} {', f'{site} {{', 1)
    text = text.replace('{\n\temail', '{\n\tadmin off\n\temail', 1)
    for shipped_target, local_target in upstreams.items():
        assert f'reverse_proxy {shipped_target}\n' in text, shipped_target
        text = text.replace(f'reverse_proxy {shipped_target}\n', f'reverse_proxy {local_target}\n')
    assert site in text and 'admin off' in text and text.count('reverse_proxy 127.0.0.1:') == 3
    return text


class Stack:
    """Addresses of the running stack: Caddy (public), relay and MediaMTX (internal)."""

    def __init__(self, caddy: int, relay: int, mediamtx: MediaMtxPorts) -> None:
        self.caddy, self.relay, self.mediamtx = caddy, relay, mediamtx


def fetch(port: int, method: str, path: str, token: str = '', body: bytes | str = b'',
          headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """One HTTP request to 127.0.0.1:``port``, ``path`` sent exactly as given: status,
    body and headers of the answer.
    """
    all_headers = dict(headers or {})
    if token:
        all_headers['Authorization'] = f'Bearer {token}'
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=15)
    try:
        connection.request(method, path, body=body or None, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


@pytest.fixture
def stack(processes: ProcessManager, relay_server: Callable[..., str], tmp_path: Path) -> Stack:
    relay_base = relay_server(env={'HAVATAR_RELAY_ADMIN_TOKEN': ADMIN})
    relay_port = int(relay_base.rsplit(':', 1)[1])
    ports = MediaMtxPorts()
    config = tmp_path / 'mediamtx.yml'
    config.write_text(yaml.safe_dump(local_config(ports, relay_auth(f'{relay_base}/mediamtx/auth'))))
    mediamtx = processes.start('mediamtx', [find_program('mediamtx'), config])
    mediamtx.wait_for_http(f'http://127.0.0.1:{ports.api}/v3/paths/list', timeout=15)
    caddy_port = free_port()
    caddyfile = tmp_path / 'Caddyfile'
    caddyfile.write_text(local_caddyfile(CADDYFILE.read_text(), f'http://127.0.0.1:{caddy_port}', {
        'relay:8090': f'127.0.0.1:{relay_port}', 'mediamtx:8889': f'127.0.0.1:{ports.webrtc}',
        'mediamtx:8888': f'127.0.0.1:{ports.hls}'}))
    home = tmp_path / 'caddy-home'
    home.mkdir()
    caddy = processes.start('caddy', [find_program('caddy'), 'run', '--adapter', 'caddyfile',
                                      '--config', caddyfile],
                            env={'HOME': str(home), 'XDG_DATA_HOME': str(home / 'data'),
                                 'XDG_CONFIG_HOME': str(home / 'config'),
                                 'HAVATAR_ACME_EMAIL': 'admin@example.org'})
    caddy.wait_for_http(f'http://127.0.0.1:{caddy_port}/health', timeout=15,
                        ok=lambda status: status == 200)
    publisher = processes.start('ffmpeg', [
        find_program('ffmpeg'), '-hide_banner', '-nostdin', '-re', '-f', 'lavfi',
        '-i', 'testsrc2=size=160x120:rate=10', '-c:v', 'libx264', '-preset', 'ultrafast',
        '-tune', 'zerolatency', '-g', '10', '-pix_fmt', 'yuv420p', '-f', 'rtsp',
        '-rtsp_transport', 'tcp', f'rtsp://robot1:robot1-token@127.0.0.1:{ports.rtsp}/robot1'])

    def published() -> bool:
        status, body, _ = fetch(ports.api, 'GET', '/v3/paths/get/robot1', ADMIN)
        return status == 200 and json.loads(body)['ready']
    publisher.wait_for(published, timeout=20, what='robot1 published')
    return Stack(caddy_port, relay_port, ports)


def sdp_offer(kind: str) -> str:
    """A browser-like WebRTC offer: receive video and audio (WHEP) or send audio (WHIP)."""
    from aiortc import RTCPeerConnection
    from aiortc.mediastreams import AudioStreamTrack

    async def make() -> str:
        pc = RTCPeerConnection()
        if kind == 'whep':
            pc.addTransceiver('video', direction='recvonly')
            pc.addTransceiver('audio', direction='recvonly')
        else:
            pc.addTransceiver(AudioStreamTrack(), direction='sendonly')
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp
    return asyncio.run(make())


def hello(port: int, token: str) -> str:
    """The relay's answer to a browser's hello through the proxy: welcome or the error code."""
    async def run() -> str:
        client = await Client.connect(f'http://127.0.0.1:{port}', 'user', token, 'robot1')
        try:
            return 'welcome' if client.welcome else client.refusal['code']
        finally:
            await client.close()
    return asyncio.run(asyncio.wait_for(run(), 20))


def hls_status(port: int, token: str) -> int:
    """HLS playlist status; with a valid token, wait (bounded) for the muxer to have one."""
    deadline = time.monotonic() + 30
    while True:
        status = fetch(port, 'GET', '/hls/robot1/index.m3u8', token)[0]
        if status != 404 or not token or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


# MediaMTX 1.14 answers a WHEP/WHIP POST its hook refused with 400 "authentication failed"
# (onWHIPPost tests the wrong error for auth.Error); OPTIONS on the same URL gives the 401.
REFUSED = '400 authentication failed'

# endpoint -> (no token, wrong token, right token); right = alice's user token, or the
# admin token for MediaMTX's API (the only way in). Paths are sent exactly as written.
EXPECTED: dict[str, tuple[object, object, object]] = {
    'GET / (web UI)': (200, 200, 200),
    'GET /web/app.js': (200, 200, 200),
    'GET /health': (200, 200, 200),
    'WS /ws hello (user robot1)': ('invalid', 'unauthorized', 'welcome'),
    'GET /api/status': (401, 401, 200),
    'OPTIONS /robot1/whep': (401, 401, 204),
    'POST /robot1/whep (watch)': (REFUSED, REFUSED, 201),
    'OPTIONS /robot1/talk/whip': (401, 401, 204),
    'POST /robot1/talk/whip (talk)': (REFUSED, REFUSED, 201),
    'GET /hls/robot1/index.m3u8': (401, 401, 200),
    'GET /metrics': (404, 404, 404),
    'GET /METRICS, /metrics/, //metrics, /%6detrics, /web/../metrics': (404, 404, 404),
    'POST /mediamtx/auth': (404, 404, 404),
    'GET /robot1/ (MediaMTX player page)': (404, 404, 404),
    'GET /v3/paths/list (MediaMTX API via proxy)': (404, 404, 404),
    'PATCH /v3/config/global/patch (via proxy)': (404, 404, 404),
    'MediaMTX API direct: GET /v3/paths/list': (401, 401, 200),
    'MediaMTX API direct: PATCH /v3/config/global/patch': (401, 401, 200),
}


def observe(stack: Stack, endpoint: str, token: str, right: str) -> object:
    """What ``endpoint`` answers with ``token`` ('' = none)."""
    public, api = stack.caddy, stack.mediamtx.api
    if endpoint.startswith('WS /ws'):
        return hello(public, token)
    if endpoint.startswith('POST /robot1/'):
        path = endpoint.split()[1]
        status, body, headers = fetch(public, 'POST', path, token, sdp_offer(path.rsplit('/', 1)[1]),
                                      {'Content-Type': 'application/sdp'})
        if status == 201:  # the session MediaMTX made is reachable too: hang up
            assert headers['Location'].startswith(path + '/'), headers['Location']
            assert fetch(public, 'DELETE', headers['Location'], token)[0] == 200
        return REFUSED if status == 400 and b'authentication failed' in body else status
    if endpoint.startswith('GET /hls/'):
        return hls_status(public, token)
    if endpoint.startswith('GET /METRICS'):
        answers = {fetch(public, 'GET', path, token)[0]
                   for path in ('/METRICS', '/metrics/', '//metrics', '/%6detrics', '/web/../metrics')}
        return answers.pop() if len(answers) == 1 else answers
    if endpoint == 'POST /mediamtx/auth':
        return fetch(public, 'POST', '/mediamtx/auth', token,
                     '{"action": "api", "password": "%s"}' % token,
                     {'Content-Type': 'application/json'})[0]
    if endpoint.startswith('MediaMTX API direct: PATCH'):
        # a harmless change (the value it already has): the point is who may make it
        return fetch(api, 'PATCH', '/v3/config/global/patch', token, '{"readTimeout": "10s"}',
                     {'Content-Type': 'application/json'})[0]
    if endpoint.startswith('MediaMTX API direct:'):
        return fetch(api, 'GET', endpoint.split()[-1], token)[0]
    method, path = endpoint.split()[:2]
    body = '{"logLevel": "debug"}' if method == 'PATCH' else b''
    return fetch(public, method, path, token, body)[0]


def test_every_public_path_answers_as_the_table_says(stack: Stack):
    observed = {}
    for endpoint in EXPECTED:
        right = ADMIN if endpoint.startswith('MediaMTX API direct') else USER
        observed[endpoint] = tuple(observe(stack, endpoint, token, right)
                                   for token in ('', WRONG, right))
    table = '\n'.join(['endpoint | no token | wrong token | right token', '--- | --- | --- | ---']
                      + [f'{e} | {a} | {b} | {c}' for e, (a, b, c) in observed.items()])
    print('\n' + table)
    assert observed == EXPECTED, table


def test_internal_endpoints_exist_behind_the_proxy(stack: Stack):
    """The 404s above are the proxy's: inside the stack the same paths answer."""
    status, body, _ = fetch(stack.relay, 'GET', '/metrics')
    assert status == 200 and b'havatar_relay_connections' in body
    hook = '{"action": "api", "token": "%s"}'
    assert fetch(stack.relay, 'POST', '/mediamtx/auth', body=hook % ADMIN)[0] == 200
    assert fetch(stack.relay, 'POST', '/mediamtx/auth', body=hook % USER)[0] == 401
    # MediaMTX's metrics are read-only and left to the network (not routed by the proxy)
    assert fetch(stack.mediamtx.metrics, 'GET', '/metrics')[0] == 200


def test_the_api_refuses_a_robot_and_a_user_and_keeps_its_config(stack: Stack):
    """No token but the admin's opens the API: a robot's stream login does not either."""
    api = stack.mediamtx.api
    robot = 'Basic ' + base64.b64encode(b'robot1:robot1-token').decode()
    assert fetch(api, 'GET', '/v3/paths/get/robot1', headers={'Authorization': robot})[0] == 401
    for token in ('', USER, WRONG):
        assert fetch(api, 'PATCH', '/v3/config/global/patch', token, '{"logLevel": "debug"}',
                     {'Content-Type': 'application/json'})[0] == 401
    admin_basic = 'Basic ' + base64.b64encode(f'admin:{ADMIN}'.encode()).decode()
    status, body, _ = fetch(api, 'GET', '/v3/config/global/get', headers={'Authorization': admin_basic})
    assert status == 200 and yaml.safe_load(body)['logLevel'] == 'info'
