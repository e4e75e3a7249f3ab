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

import pytest
import yaml

from havatar_testing.endpoints import PROBES, REFUSED, WRONG, markdown, probe_all, violations
from havatar_testing.stack import ADMIN, USER, Stack, fetch


@pytest.fixture
def stack(proxied_stack: Stack) -> Stack:
    proxied_stack.publish(audio=False)
    return proxied_stack


# (server, endpoint) -> (no token, wrong token, right token); right = alice's user token,
# or the admin token for MediaMTX's API (the only way in). Paths are sent exactly as written.
EXPECTED: dict[str, tuple[object, object, object]] = {
    'caddy GET / (web UI)': (200, 200, 200),
    'caddy GET /web/app.js': (200, 200, 200),
    'caddy GET /health': (200, 200, 200),
    'caddy GET /web/site.json (where the page finds MediaMTX)': (200, 200, 200),
    'caddy WS /ws hello (user)': ('invalid', 'unauthorized', 'welcome'),
    'caddy GET /api/status': (401, 401, 200),
    'caddy GET /api/robots/<robot>/recordings': (401, 401, 200),
    'caddy GET /api/phrases': (401, 401, 200),
    'caddy GET /api/predict?lang=ro&text=mul': (401, 401, 200),
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
    'caddy GET /list?path=<robot> (MediaMTX recordings)': (404, 404, 404),
    'mediamtx-playback GET /list?path=<robot>': (401, 401, 400),
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
