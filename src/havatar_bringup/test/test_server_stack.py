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
import time

import pytest
import yaml

from havatar_testing.relay import Client
from havatar_testing.stack import ADMIN, Stack, fetch

WRONG = 'wrong-token'
USER = 'alice-token'  # may watch robot1 and talk to it (havatar_testing.relay.ACCOUNTS)


@pytest.fixture
def stack(proxied_stack: Stack) -> Stack:
    proxied_stack.publish(audio=False)
    return proxied_stack


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
    'GET /web/site.json (where the page finds MediaMTX)': (200, 200, 200),
    'GET /health': (200, 200, 200),
    'WS /ws hello (user robot1)': ('invalid', 'unauthorized', 'welcome'),
    'GET /api/status': (401, 401, 200),
    'GET /api/robots/robot1/recordings': (401, 401, 200),
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
    'GET /list?path=robot1 (MediaMTX recordings via proxy)': (404, 404, 404),
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
