"""Every endpoint of a running Havatar stack, tried without a token, with a wrong one and
with the right one (the probe core of the endpoint table and of the server-stack tests).

A ``Stack`` names the running pieces: Caddy (the shipped Caddyfile on loopback), the relay
server, MediaMTX, Redis, and optionally the robot (local server and MJPEG server).
``PROBES`` lists what to try; ``probe_all`` runs the ones the stack has and returns rows
of observations; ``markdown`` prints them. An observation is an HTTP or RTSP status, a
WebSocket hello's outcome (``welcome`` or the refusal's code) or a note.

Access classes (``Probe.access``), what the security test asserts of them:
- ``open``: for anyone (the web UI's files, ``/health``).
- ``private``: no answer of success without the right token, success with it.
- ``internal``: reachable only inside the stack (Compose network / the robot's loopback):
  the proxy must not route it, which the ``closed`` rows check.
- ``closed``: the proxy answers 404, whatever the token.
"""
from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import aiohttp
import psutil

from havatar_bringup.processes import ProcessManager
from .relay import Client
from .stack import TIMEOUT_S, Stack, fetch, start_caddy

WRONG = 'wrong-token'
# MediaMTX 1.14 answers a WHEP/WHIP POST its hook refused with 400 "authentication failed"
# (onWHIPPost tests the wrong error for auth.Error); OPTIONS on the same URL gives the 401.
REFUSED = '400 authentication failed'


# --------------------------------------------------------------------------- clients

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


def hello(port: int, token: str, robot_id: str) -> str:
    """A browser's hello at 127.0.0.1:``port``/ws: ``welcome`` or the refusal's code."""
    async def run() -> str:
        client = await Client.connect(f'http://127.0.0.1:{port}', 'user', token, robot_id)
        try:
            return 'welcome' if client.welcome else str(client.refusal['code'])
        finally:
            await client.close()
    return asyncio.run(asyncio.wait_for(run(), 20))


def robot_audio(port: int, token: str) -> object:
    """The robot's microphone at /audio/ws: ``audio`` once a frame arrives, else the HTTP status."""
    async def run() -> object:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f'http://127.0.0.1:{port}/audio/ws?token={token}') as ws:
                    frame = await ws.receive(timeout=TIMEOUT_S)
                    return 'audio' if frame.type == aiohttp.WSMsgType.BINARY else str(frame.type)
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status
    return asyncio.run(run())


def robot_talk(port: int, token: str) -> object:
    """A talk hello at /talk/ws (with a session id of no /ws session): the robot's answer's code."""
    async def run() -> object:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f'http://127.0.0.1:{port}/talk/ws') as ws:
                await ws.send_json({'type': 'talk', 'token': token, 'session_id': 'no-such-session'})
                answer = json.loads((await ws.receive(timeout=TIMEOUT_S)).data)
                return answer.get('code') or answer.get('type')
    return asyncio.run(run())


def webrtc_post(port: int, path: str, token: str) -> object:
    """A WHEP/WHIP offer to ``path``; a session it opens is hung up at once."""
    status, body, headers = fetch(port, 'POST', path, token, sdp_offer(path.rsplit('/', 1)[1]),
                                  {'Content-Type': 'application/sdp'})
    if status == 201:  # the session MediaMTX made is reachable too: hang up
        assert headers['Location'].startswith(path + '/'), headers['Location']
        assert fetch(port, 'DELETE', headers['Location'], token)[0] == 200
    return REFUSED if status == 400 and b'authentication failed' in body else status


def hls_status(port: int, path: str, token: str) -> object:
    """HLS playlist status; with a token, wait (bounded) for the muxer to have one (a
    request MediaMTX holds past ``TIMEOUT_S`` while its muxer starts, or answers 500 because
    the muxer closed while the request waited (gohlslib), is asked again).
    """
    deadline = time.monotonic() + 45
    while True:
        try:
            status: object = fetch(port, 'GET', path, token)[0]
        except TimeoutError:
            status = 'no answer'
        if status not in (404, 500, 'no answer') or not token or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def rtsp_status(port: int, method: str, path: str, user: str = '', password: str = '',
                tls: bool = False) -> int:
    """The status of one RTSP(S) request (Basic credentials if any) to 127.0.0.1:``port``
    (the server's certificate is not checked: who may do what is the question here).
    """
    url = f'{"rtsps" if tls else "rtsp"}://127.0.0.1:{port}/{path}'
    head = f'{method} {url} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: havatar-probe\r\n'
    if user or password:
        head += 'Authorization: Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode() + '\r\n'
    body = ''
    if method == 'ANNOUNCE':
        body = ('v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=probe\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n'
                'm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n')
        head += f'Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n'
    elif method == 'DESCRIBE':
        head += 'Accept: application/sdp\r\n'
    with socket.create_connection(('127.0.0.1', port), timeout=TIMEOUT_S) as raw:
        sock = raw
        if tls:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            sock = context.wrap_socket(raw)
        sock.sendall((head + '\r\n' + body).encode())
        status_line = sock.makefile('rb').readline().decode()
    return int(status_line.split()[1])


def redis_ping(port: int, token: str) -> str:
    """Redis's answer to PING (after AUTH ``token``, if any): ``PONG`` or its error's code."""
    with socket.create_connection(('127.0.0.1', port), timeout=TIMEOUT_S) as sock:
        reader = sock.makefile('rb')
        if token:
            sock.sendall(f'AUTH {token}\r\n'.encode())
            reader.readline()
        sock.sendall(b'PING\r\n')
        answer = reader.readline().decode().strip()
    return answer.lstrip('+') if answer.startswith('+') else answer.lstrip('-').split()[0]


# --------------------------------------------------------------------------- the probes

Run = Callable[[Stack, str], object]


@dataclass(frozen=True)
class Probe:
    """One endpoint: where it is, who may use it, and how to try it with a token."""

    server: str       # 'caddy', 'relay', 'mediamtx', 'redis', 'robot', 'mjpeg'
    name: str         # method and path as sent (<robot>: the robot id)
    access: str       # 'open', 'private', 'internal', 'closed'
    right: str        # which token is the right one: a key of Stack.tokens
    exposed: str      # where the shipped deployment exposes it
    run: Run
    admitted: object = None  # the right token's answer when it is not a success (a 400 past auth)


def _http(server: str, method: str, path: str, body: str = '',
          content_type: str = 'application/json', read_body: bool = True) -> Run:
    def run(stack: Stack, token: str) -> object:
        port = _port(stack, server)
        headers = {'Content-Type': content_type} if body else {}
        return fetch(port, method, path.replace('<robot>', stack.robot_id), token, body, headers,
                     read_body)[0]
    return run


def _port(stack: Stack, server: str) -> int:
    return {'caddy': stack.caddy, 'relay': stack.relay, 'robot': stack.robot_ui, 'mjpeg': stack.mjpeg,
            'mediamtx-api': stack.mediamtx.api, 'mediamtx-metrics': stack.mediamtx.metrics,
            'mediamtx-playback': stack.mediamtx.playback, 'mediamtx-webrtc': stack.mediamtx.webrtc,
            'mediamtx-hls': stack.mediamtx.hls,
            'mediamtx-rtsp': stack.mediamtx.rtsps if stack.rtsps else stack.mediamtx.rtsp,
            'redis': stack.redis}[server]


def _caddy_metrics_variants(stack: Stack, token: str) -> object:
    answers = {fetch(stack.caddy, 'GET', path, token)[0]
               for path in ('/METRICS', '/metrics/', '//metrics', '/%6detrics', '/web/../metrics')}
    return answers.pop() if len(answers) == 1 else answers


def _hook(server: str) -> Run:
    def run(stack: Stack, token: str) -> object:
        return fetch(_port(stack, server), 'POST', '/mediamtx/auth', token,
                     json.dumps({'action': 'api', 'password': token}), {'Content-Type': 'application/json'})[0]
    return run


def _rtsp_read(stack: Stack, token: str) -> object:
    return rtsp_status(_port(stack, 'mediamtx-rtsp'), 'DESCRIBE', stack.robot_id, 'viewer' if token else '', token,
                       stack.rtsps)


def _rtsp_publish(stack: Stack, token: str) -> object:
    if token == stack.tokens['robot']:  # would replace the robot's own stream: it publishes
        if not stack.published():  # idle while nobody watches: a viewer wakes it (on demand)
            _rtsp_read(stack, stack.tokens['user'])
        return 'publishing' if stack.published() else 'not published'
    return rtsp_status(_port(stack, 'mediamtx-rtsp'), 'ANNOUNCE', stack.robot_id, stack.robot_id if token else '',
                       token, stack.rtsps)


def _server_stop(stack: Stack, token: str) -> object:
    status = fetch(stack.robot_ui, 'POST', '/server/stop', token)[0]
    if 200 <= status < 300:  # it stopped publishing: back to server mode
        fetch(stack.robot_ui, 'POST', '/server/start', token)
    return status


PUBLIC, COMPOSE, ROBOT_LAN = 'public (443)', 'Compose network', 'robot LAN'
PUBLISHED = 'public (8322)'
PROBES: list[Probe] = [
    # Caddy: the only public HTTP origin of the server side
    Probe('caddy', 'GET / (web UI)', 'open', 'user', PUBLIC, _http('caddy', 'GET', '/')),
    Probe('caddy', 'GET /web/app.js', 'open', 'user', PUBLIC, _http('caddy', 'GET', '/web/app.js')),
    Probe('caddy', 'GET /health', 'open', 'user', PUBLIC, _http('caddy', 'GET', '/health')),
    Probe('caddy', 'GET /web/site.json (where the page finds MediaMTX)', 'open', 'user', PUBLIC,
          _http('caddy', 'GET', '/web/site.json')),
    Probe('caddy', 'WS /ws hello (user)', 'private', 'user', PUBLIC,
          lambda s, t: hello(s.caddy, t, s.robot_id)),
    Probe('caddy', 'GET /api/status', 'private', 'user', PUBLIC, _http('caddy', 'GET', '/api/status')),
    Probe('caddy', 'GET /api/robots/<robot>/recordings', 'private', 'user', PUBLIC,
          _http('caddy', 'GET', '/api/robots/<robot>/recordings')),
    Probe('caddy', 'OPTIONS /<robot>/whep', 'private', 'user', PUBLIC,
          _http('caddy', 'OPTIONS', '/<robot>/whep')),
    Probe('caddy', 'POST /<robot>/whep (watch)', 'private', 'user', PUBLIC,
          lambda s, t: webrtc_post(s.caddy, f'/{s.robot_id}/whep', t)),
    Probe('caddy', 'OPTIONS /<robot>/talk/whip', 'private', 'user', PUBLIC,
          _http('caddy', 'OPTIONS', '/<robot>/talk/whip')),
    Probe('caddy', 'POST /<robot>/talk/whip (talk)', 'private', 'user', PUBLIC,
          lambda s, t: webrtc_post(s.caddy, f'/{s.robot_id}/talk/whip', t)),
    Probe('caddy', 'GET /hls/<robot>/index.m3u8', 'private', 'user', PUBLIC,
          lambda s, t: hls_status(s.caddy, f'/hls/{s.robot_id}/index.m3u8', t)),
    Probe('caddy', 'GET /metrics', 'closed', 'admin', PUBLIC, _http('caddy', 'GET', '/metrics')),
    Probe('caddy', 'GET /METRICS, /metrics/, //metrics, /%6detrics, /web/../metrics', 'closed', 'admin',
          PUBLIC, _caddy_metrics_variants),
    Probe('caddy', 'POST /mediamtx/auth', 'closed', 'admin', PUBLIC, _hook('caddy')),
    Probe('caddy', 'GET /<robot>/ (MediaMTX player page)', 'closed', 'user', PUBLIC,
          _http('caddy', 'GET', '/<robot>/')),
    Probe('caddy', 'GET /v3/paths/list (MediaMTX API)', 'closed', 'admin', PUBLIC,
          _http('caddy', 'GET', '/v3/paths/list')),
    Probe('caddy', 'PATCH /v3/config/global/patch (MediaMTX API)', 'closed', 'admin', PUBLIC,
          _http('caddy', 'PATCH', '/v3/config/global/patch', '{"logLevel": "debug"}')),
    Probe('caddy', 'GET /list?path=<robot> (MediaMTX recordings)', 'closed', 'admin', PUBLIC,
          _http('caddy', 'GET', '/list?path=<robot>')),
    # the relay server, directly (Compose: only Caddy and MediaMTX reach it)
    Probe('relay', 'GET /', 'open', 'user', COMPOSE, _http('relay', 'GET', '/')),
    Probe('relay', 'GET /health', 'open', 'user', COMPOSE, _http('relay', 'GET', '/health')),
    Probe('relay', 'WS /ws hello (user)', 'private', 'user', COMPOSE,
          lambda s, t: hello(s.relay, t, s.robot_id)),
    Probe('relay', 'GET /api/status', 'private', 'user', COMPOSE, _http('relay', 'GET', '/api/status')),
    Probe('relay', 'GET /api/robots/<robot>/recordings', 'private', 'user', COMPOSE,
          _http('relay', 'GET', '/api/robots/<robot>/recordings')),
    Probe('relay', 'GET /metrics', 'internal', 'admin', COMPOSE, _http('relay', 'GET', '/metrics')),
    Probe('relay', 'POST /mediamtx/auth (action api)', 'private', 'admin', COMPOSE, _hook('relay')),
    # MediaMTX, directly
    Probe('mediamtx-api', 'GET /v3/paths/list', 'private', 'admin', COMPOSE,
          _http('mediamtx-api', 'GET', '/v3/paths/list')),
    # a harmless change (the value it already has): the point is who may make it
    Probe('mediamtx-api', 'PATCH /v3/config/global/patch', 'private', 'admin', COMPOSE,
          _http('mediamtx-api', 'PATCH', '/v3/config/global/patch', '{"readTimeout": "10s"}')),
    # no recording of the robot exists: MediaMTX's 400 with the right token is past authentication
    Probe('mediamtx-playback', 'GET /list?path=<robot>', 'private', 'admin', COMPOSE,
          _http('mediamtx-playback', 'GET', '/list?path=<robot>'), admitted=400),
    Probe('mediamtx-metrics', 'GET /metrics', 'internal', 'admin', COMPOSE,
          _http('mediamtx-metrics', 'GET', '/metrics')),
    Probe('mediamtx-webrtc', 'POST /<robot>/whep', 'private', 'user', COMPOSE,
          lambda s, t: webrtc_post(s.mediamtx.webrtc, f'/{s.robot_id}/whep', t)),
    Probe('mediamtx-webrtc', 'POST /<robot>/talk/whip', 'private', 'user', COMPOSE,
          lambda s, t: webrtc_post(s.mediamtx.webrtc, f'/{s.robot_id}/talk/whip', t)),
    Probe('mediamtx-hls', 'GET /<robot>/index.m3u8', 'private', 'user', COMPOSE,
          lambda s, t: hls_status(s.mediamtx.hls, f'/{s.robot_id}/index.m3u8', t)),
    Probe('mediamtx-rtsp', 'RTSPS DESCRIBE <robot> (watch)', 'private', 'user', PUBLISHED, _rtsp_read),
    Probe('mediamtx-rtsp', 'RTSPS ANNOUNCE <robot> (publish as the robot)', 'private', 'robot', PUBLISHED,
          _rtsp_publish),
    Probe('redis', 'PING', 'internal', 'admin', COMPOSE, lambda s, t: redis_ping(s.redis, t)),
    # the robot's own servers (on its LAN; relay_node's local server, streaming_node's MJPEG)
    Probe('robot', 'GET / (web UI)', 'open', 'access', ROBOT_LAN, _http('robot', 'GET', '/')),
    Probe('robot', 'GET /web/app.js', 'open', 'access', ROBOT_LAN, _http('robot', 'GET', '/web/app.js')),
    Probe('robot', 'GET /web/site.json', 'open', 'access', ROBOT_LAN, _http('robot', 'GET', '/web/site.json')),
    Probe('robot', 'WS /ws hello (user)', 'private', 'access', ROBOT_LAN,
          lambda s, t: hello(s.robot_ui, t, s.robot_id)),
    Probe('robot', 'WS /audio/ws (the robot microphone)', 'private', 'access', ROBOT_LAN,
          lambda s, t: robot_audio(s.robot_ui, t)),
    # with a session id of no /ws session: refused past authentication
    Probe('robot', 'WS /talk/ws hello (talk to the robot)', 'private', 'access', ROBOT_LAN,
          lambda s, t: robot_talk(s.robot_ui, t), admitted='not_driver'),
    Probe('robot', 'GET /system_status', 'private', 'access', ROBOT_LAN, _http('robot', 'GET', '/system_status')),
    Probe('robot', 'GET /server/status', 'private', 'access', ROBOT_LAN, _http('robot', 'GET', '/server/status')),
    Probe('robot', 'GET /api/phrases', 'private', 'access', ROBOT_LAN, _http('robot', 'GET', '/api/phrases')),
    Probe('robot', 'GET /api/predict?lang=ro&text=mul', 'private', 'access', ROBOT_LAN,
          _http('robot', 'GET', '/api/predict?lang=ro&text=mul')),
    Probe('robot', 'GET /server/config', 'private', 'access', ROBOT_LAN, _http('robot', 'GET', '/server/config')),
    # an invalid body: 400 with the right token shows the request got past authentication
    Probe('robot', 'POST /server/config (invalid body)', 'private', 'access', ROBOT_LAN,
          _http('robot', 'POST', '/server/config', '[]'), admitted=400),
    Probe('robot', 'POST /server/test (invalid body)', 'private', 'access', ROBOT_LAN,
          _http('robot', 'POST', '/server/test', '[]'), admitted=400),
    Probe('robot', 'POST /server/start', 'private', 'access', ROBOT_LAN, _http('robot', 'POST', '/server/start')),
    Probe('robot', 'POST /server/stop (then start again)', 'private', 'access', ROBOT_LAN, _server_stop),
    Probe('mjpeg', 'GET /health', 'open', 'access', ROBOT_LAN, _http('mjpeg', 'GET', '/health')),
    Probe('mjpeg', 'GET /stream.mjpg', 'private', 'access', ROBOT_LAN,
          _http('mjpeg', 'GET', '/stream.mjpg', read_body=False)),
    Probe('mjpeg', 'GET /snapshot.jpg', 'private', 'access', ROBOT_LAN, _http('mjpeg', 'GET', '/snapshot.jpg')),
    Probe('mjpeg', 'GET /stats', 'private', 'access', ROBOT_LAN, _http('mjpeg', 'GET', '/stats')),
    # last: their wrong tokens add to the relay's back-off of this address, which the WS
    # hellos above must stay under (a hello's answer is awaited 5 s)
    Probe('caddy', 'GET /api/phrases', 'private', 'user', PUBLIC, _http('caddy', 'GET', '/api/phrases')),
    Probe('caddy', 'GET /api/predict?lang=ro&text=mul', 'private', 'user', PUBLIC,
          _http('caddy', 'GET', '/api/predict?lang=ro&text=mul')),
    Probe('relay', 'GET /api/phrases', 'private', 'user', COMPOSE, _http('relay', 'GET', '/api/phrases')),
    Probe('relay', 'GET /api/predict?lang=ro&text=mul', 'private', 'user', COMPOSE,
          _http('relay', 'GET', '/api/predict?lang=ro&text=mul')),
]


def applicable(stack: Stack, probe: Probe) -> bool:
    """Whether ``stack`` runs the server of ``probe``."""
    return _port(stack, probe.server) != 0


@dataclass
class Row:
    probe: Probe
    answers: tuple[object, object, object]  # no token, wrong token, right token


def probe_all(stack: Stack, probes: Optional[list[Probe]] = None) -> list[Row]:
    """Try every applicable probe with no token, a wrong one and the right one."""
    return [Row(probe, (probe.run(stack, ''), probe.run(stack, WRONG), probe.run(stack, stack.tokens[probe.right])))
            for probe in (PROBES if probes is None else probes) if applicable(stack, probe)]


def succeeded(answer: object) -> bool:
    """An answer that lets the client in: 2xx, a welcome, a publication, a PONG."""
    if isinstance(answer, int):
        return 200 <= answer < 300
    return answer in ('welcome', 'publishing', 'PONG', 'audio', 'talk_ready')


def let_in(probe: Probe, answer: object) -> bool:
    """Whether ``answer`` shows the request got past authentication at ``probe``."""
    return succeeded(answer) or (probe.admitted is not None and answer == probe.admitted)


def violations(rows: list[Row]) -> list[str]:
    """The rows that break their access class (empty: the table is as it should be)."""
    found = []
    for row in rows:
        none, wrong, right = row.answers
        what = f'{row.probe.server} {row.probe.name}: {row.answers}'
        if row.probe.access == 'private' and (let_in(row.probe, none) or let_in(row.probe, wrong)
                                              or not let_in(row.probe, right)):
            found.append(what)
        if row.probe.access == 'closed' and row.answers != (404, 404, 404):
            found.append(what)
        if row.probe.access == 'open' and not all(succeeded(answer) for answer in row.answers):
            found.append(what)
    return found


def markdown(rows: list[Row]) -> str:
    """The table: server, endpoint, access class, exposure, the three answers, the right token."""
    lines = ['server | endpoint | access | exposed | no token | wrong token | right token | right is',
             '--- | --- | --- | --- | --- | --- | --- | ---']
    for row in rows:
        p = row.probe
        lines.append(' | '.join([p.server, f'`{p.name}`', p.access, p.exposed,
                                 *(str(a) for a in row.answers), p.right]))
    return '\n'.join(lines)


# --------------------------------------------------------------------------- listening ports

def listening_ports(processes: dict[int, str]) -> dict[int, tuple[str, str]]:
    """TCP ports the ``processes`` (pid -> name) and their descendants listen on:
    port -> (name, address).
    """
    found: dict[int, tuple[str, str]] = {}
    for pid, name in processes.items():
        try:
            root = psutil.Process(pid)
            tree = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            try:
                connections = process.net_connections(kind='tcp')
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            for connection in connections:
                if connection.status == psutil.CONN_LISTEN:
                    found[connection.laddr.port] = (name, connection.laddr.ip)
    return found


def probed_ports(stack: Stack, rows: list[Row]) -> set[int]:
    return {_port(stack, row.probe.server) for row in rows}


def unprobed_ports(stack: Stack, rows: list[Row]) -> dict[int, tuple[str, str]]:
    """Listening ports of the stack that no row tried."""
    probed = probed_ports(stack, rows)
    return {port: owner for port, owner in listening_ports(stack.pids).items() if port not in probed}


# --------------------------------------------------------------------------- the whole stack

def start_whole_stack(processes: ProcessManager, work_dir: Path, domain_id: int, docker: Path) -> Stack:
    """The demo's stack (Redis, relay server, MediaMTX through the relay's hook, the
    simulated robot in server mode) with the relay's admin token set, MediaMTX speaking
    RTSPS only with a certificate made by ``docker``/media-cert.sh (the robot trusts it
    through ``server_ca_file``), the shipped ``docker``/Caddyfile in front; returns once
    the robot publishes.
    """
    from havatar_bringup.demo import ROBOT_ID, Demo, start_robot, start_servers

    certs = work_dir / 'certs'
    subprocess.run(['bash', docker / 'media-cert.sh', '--dir', certs, '127.0.0.1', 'localhost'],
                   check=True, capture_output=True, timeout=30)
    demo = Demo(work_dir, domain_id, media_cert=str(certs / 'server.crt'))
    processes.env.update({key: value for key, value in demo.environment().items() if key.startswith('HAVATAR_')})
    start_servers(demo, processes)
    start_robot(demo, processes)
    stack = Stack(ROBOT_ID, {'user': demo.user_token, 'admin': demo.admin_token, 'robot': demo.robot_token,
                             'access': demo.access_token},
                  caddy=0, relay=demo.relay, mediamtx=demo.mediamtx, redis=demo.redis,
                  robot_ui=demo.ui, mjpeg=demo.mjpeg, rtsps=True)
    stack.caddy = start_caddy(processes, docker / 'Caddyfile', work_dir, demo.relay, demo.mediamtx)
    stack.pids = {process.pid: process.name for process in processes.processes}
    processes.processes[0].wait_for(stack.published, timeout=60, what=f'{ROBOT_ID} published')
    return stack
