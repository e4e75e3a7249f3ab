"""The shipped Caddyfile, run by Debian's Caddy in front of a real relay server and a real
MediaMTX (with the shipped authentication: the relay hook), exposes only what browsers need.

The Caddyfile is used as shipped except for its site address (plain HTTP on a free
loopback port), its upstream host names (loopback ports) and Caddy's own admin endpoint
(off): the routing is the shipped one. Every public path is tried with no token, a wrong
token and the right one (the probes of ``havatar_testing.endpoints``, shared with the
whole-stack endpoint table); ``EXPECTED`` is the table of answers.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Callable

import pytest
import yaml

from havatar_bringup.mediamtx import MediaMtxPorts, local_config, relay_auth
from havatar_bringup.processes import ProcessManager, find_program
from havatar_testing import WORKSPACE
from havatar_testing.endpoints import (PROBES, REFUSED, WRONG, Stack, fetch, markdown, probe_all, published,
                                       start_caddy, violations)

CADDYFILE = WORKSPACE / 'docker' / 'Caddyfile'
ADMIN = 'admin-token-of-the-test'
USER = 'alice-token'  # may watch robot1 and talk to it (havatar_testing.relay.ACCOUNTS)


@pytest.fixture
def stack(processes: ProcessManager, relay_server: Callable[..., str], tmp_path: Path) -> Stack:
    relay_base = relay_server(env={'HAVATAR_RELAY_ADMIN_TOKEN': ADMIN})
    relay_port = int(relay_base.rsplit(':', 1)[1])
    ports = MediaMtxPorts()
    config = tmp_path / 'mediamtx.yml'
    config.write_text(yaml.safe_dump(local_config(ports, relay_auth(f'{relay_base}/mediamtx/auth'))))
    mediamtx = processes.start('mediamtx', [find_program('mediamtx'), config])
    mediamtx.wait_for_http(f'http://127.0.0.1:{ports.api}/v3/paths/list', timeout=15)
    caddy_port = start_caddy(processes, CADDYFILE, tmp_path, relay_port, ports)
    stack = Stack('robot1', {'user': USER, 'admin': ADMIN, 'robot': 'robot1-token', 'access': ''},
                  caddy=caddy_port, relay=relay_port, mediamtx=ports)
    publisher = processes.start('ffmpeg', [
        find_program('ffmpeg'), '-hide_banner', '-nostdin', '-re', '-f', 'lavfi',
        '-i', 'testsrc2=size=160x120:rate=10', '-c:v', 'libx264', '-preset', 'ultrafast',
        '-tune', 'zerolatency', '-g', '10', '-pix_fmt', 'yuv420p', '-f', 'rtsp',
        '-rtsp_transport', 'tcp', f'rtsp://robot1:robot1-token@127.0.0.1:{ports.rtsp}/robot1'])
    publisher.wait_for(lambda: published(stack), timeout=20, what='robot1 published')
    return stack


# (server, endpoint) -> (no token, wrong token, right token); right = alice's user token,
# or the admin token for MediaMTX's API (the only way in). Paths are sent exactly as written.
EXPECTED: dict[str, tuple[object, object, object]] = {
    'caddy GET / (web UI)': (200, 200, 200),
    'caddy GET /web/app.js': (200, 200, 200),
    'caddy GET /health': (200, 200, 200),
    'caddy WS /ws hello (user)': ('invalid', 'unauthorized', 'welcome'),
    'caddy GET /api/status': (401, 401, 200),
    'caddy OPTIONS /<robot>/whep': (401, 401, 204),
    'caddy POST /<robot>/whep (watch)': (REFUSED, REFUSED, 201),
    'caddy OPTIONS /<robot>/talk/whip': (401, 401, 204),
    'caddy POST /<robot>/talk/whip (talk)': (REFUSED, REFUSED, 201),
    'caddy GET /hls/<robot>/index.m3u8': (401, 401, 200),
    'caddy GET /metrics': (404, 404, 404),
    'caddy GET /METRICS, /metrics/, //metrics, /%6detrics, /web/../metrics': (404, 404, 404),
    'caddy POST /mediamtx/auth': (404, 404, 404),
    'caddy GET /<robot>/ (MediaMTX player page)': (404, 404, 404),
    'caddy GET /v3/paths/list (MediaMTX API)': (404, 404, 404),
    'caddy PATCH /v3/config/global/patch (MediaMTX API)': (404, 404, 404),
    'mediamtx-api GET /v3/paths/list': (401, 401, 200),
    'mediamtx-api PATCH /v3/config/global/patch': (401, 401, 200),
}


def test_every_public_path_answers_as_the_table_says(stack: Stack):
    rows = probe_all(stack, [p for p in PROBES if f'{p.server} {p.name}' in EXPECTED])
    observed = {f'{row.probe.server} {row.probe.name}': row.answers for row in rows}
    table = markdown(rows)
    print('\n' + table)
    assert observed == EXPECTED, table
    assert not violations(rows), table


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
