"""The cloud relay server (executable ``relay_server``; needs no ROS).

    relay_server --config relay.yaml [--host 0.0.0.0] [--port 8090] [--redis-url redis://...]

Endpoints: ``GET /ws`` (the relay protocol, users and robots), ``GET /api/status``
(Bearer user token: that user's robots), ``GET /health``, ``GET /metrics`` (Prometheus),
``POST /mediamtx/auth`` (MediaMTX's HTTP authentication hook: the same tokens decide who
may publish, watch and talk), the web UI at ``/`` with ``/web/site.json`` (where the page
finds MediaMTX), and recordings (Bearer user token of a user of that robot; starting and
stopping needs ``record: true``): ``GET /api/robots/<id>/recordings`` (state and files),
``POST /api/robots/<id>/recording`` (``{"record": true|false}``),
``GET /api/robots/<id>/recordings/<start>?duration=<s>`` (the MP4), and the user's speech
aids (Bearer user token; ``speech_api``): ``GET``/``PUT /api/phrases``, ``GET /api/recent``,
``GET /api/predict?lang=&text=``. With MediaMTX's API and the admin token set, robots
(protocol v2) hear who watches them (``watchers.py``) and encode only then; a reader's
authentication wakes the robot's encoder at once.

The config file (YAML) holds the accounts; tokens may be written as ``sha256:<hex>``::

    robots: {robot1: {token: "..."}}
    users: {alice: {token: "...", robots: [robot1], record: true}, ops: {token: "...", robots: ["*"]}}
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs
from typing import Any, Callable, Optional

import yaml
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from havatar_common.auth import request_token, token_matches
from havatar_common.conn_limits import MAX_CONNECTIONS_PER_CLIENT, run_app
from havatar_common.sd_notify import notify

from ..brokers import Broker, BrokerUnavailable, MemoryBroker, RedisBroker
from ..accounts import Accounts
from ..relay_core import RelayCore
from .recording import START, Recorder, RecorderError
from .watchers import Watchers
from ..session import Limits
from ..speech_api import SpeechApi
from ..speech_store import FileSpeechStore, RedisSpeechStore, SpeechStore

WEB_DIR = Path(__file__).resolve().parents[1] / 'web'
SITE_PATH = '/web/site.json'  # the web UI asks it which site served it (the robot's has one too)
log = logging.getLogger('havatar_relay')


class Settings(BaseSettings):
    """Relay settings: environment variables ``HAVATAR_RELAY_*``, then the command line."""

    model_config = SettingsConfigDict(env_prefix='HAVATAR_RELAY_')

    host: str = '0.0.0.0'
    port: int = Field(8090, ge=1, le=65535)
    redis_url: str = ''
    instance_id: str = ''
    config: Optional[Path] = None
    admin_token: str = ''
    user_rate: float = Field(60.0, gt=0)
    user_burst: float = Field(120.0, ge=1)
    heartbeat_s: float = Field(1.0, gt=0)
    # behind a reverse proxy (docker/compose.yaml: Caddy) the proxy is the only peer: then
    # the client is the last X-Forwarded-For entry, and the per-peer cap is the proxy's
    trust_forwarded: bool = False
    max_connections_per_client: int = Field(MAX_CONNECTIONS_PER_CLIENT, ge=0)  # 0: no cap
    # where browsers reach MediaMTX (docs/server-setup.md): '' = the page's own origin, as
    # behind the shipped Caddyfile (/<robot>/whep, /<robot>/talk/whip and /hls/<robot>/)
    webrtc_url: str = ''   # base of /<robot>/whep and /<robot>/talk/whip
    hls_url: str = ''      # base of /<robot>/index.m3u8 ('' = <origin>/hls)
    # recording from the web UI (users with ``record: true``), through MediaMTX's control
    # API and playback server, asked with admin_token; '' = no recording
    mediamtx_api_url: str = ''        # http://mediamtx:9997
    mediamtx_playback_url: str = ''   # http://mediamtx:9996
    # the users' phrase boards and word histories (/api/phrases, /api/recent, /api/predict):
    # in Redis when redis_url is set, else in <data_dir>/speech.json, else in memory only
    data_dir: Optional[Path] = None


def load_accounts(path: Optional[Path]) -> Accounts:
    if path is None:
        return Accounts()
    data = yaml.safe_load(path.read_text()) or {}
    robots = {rid: str(entry['token']) for rid, entry in (data.get('robots') or {}).items()}
    users = {name: (str(entry['token']), list(entry.get('robots') or []))
             for name, entry in (data.get('users') or {}).items()}
    recorders = {name for name, entry in (data.get('users') or {}).items() if entry.get('record')}
    return Accounts(robots, users, recorders)


class RelayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge('havatar_relay_connections', 'Open WebSocket sessions', ['role'],
                                 registry=self.registry)
        self.messages = Counter('havatar_relay_messages_total', 'Messages received', ['type'],
                                registry=self.registry)
        self.errors = Counter('havatar_relay_errors_total', 'Error replies', ['code'], registry=self.registry)
        self.rate_limited = Counter('havatar_relay_rate_limited_total', 'Messages refused by rate limits',
                                    ['role'], registry=self.registry)
        self.auth_throttled = Counter('havatar_relay_auth_throttled_total',
                                      'Wrong tokens answered late (per-client back-off)', ['endpoint'],
                                      registry=self.registry)
        self.auth_failed = Counter('havatar_relay_auth_failed_total', 'Refused hellos', ['role'],
                                   registry=self.registry)
        self.forward = Histogram('havatar_relay_forward_seconds', 'Relay to robot forwarding time',
                                 buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
                                 registry=self.registry)
        self._message_children: dict[str, Any] = {}

    def __call__(self, event: str, label: str) -> None:
        if event == 'connect':
            self.connections.labels(label).inc()
        elif event == 'disconnect':
            self.connections.labels(label).dec()
        elif event == 'message':  # per message: the labelled child is looked up once per type
            child = self._message_children.get(label)
            if child is None:
                child = self._message_children[label] = self.messages.labels(label)
            child.inc()
        elif event == 'error':
            self.errors.labels(label).inc()
        elif event == 'rate_limited':
            self.rate_limited.labels(label).inc()
        elif event == 'auth_failed':
            self.auth_failed.labels(label).inc()
        elif event == 'auth_throttled':
            self.auth_throttled.labels(label).inc()
        elif event == 'forward_ms':
            self.forward.observe(max(0.0, float(label)) / 1000)


def create_app(settings: Settings, broker: Optional[Broker] = None) -> web.Application:
    accounts = load_accounts(settings.config)
    metrics = RelayMetrics()
    broker = broker or (RedisBroker(settings.redis_url) if settings.redis_url else MemoryBroker())
    core = RelayCore(broker, accounts, settings.instance_id or uuid.uuid4().hex[:8],
                     Limits(user_rate=settings.user_rate, user_burst=settings.user_burst,
                            heartbeat_s=settings.heartbeat_s), metrics)
    app = web.Application()
    throttle = core.throttle
    recorder = (Recorder(settings.mediamtx_api_url, settings.mediamtx_playback_url, settings.admin_token)
                if recording_set_up(settings) else None)
    watchers = (Watchers(settings.mediamtx_api_url, settings.admin_token, core.viewer_robots,
                         core.connected_elsewhere, core.send_to_robot)
                if settings.mediamtx_api_url and settings.admin_token else None)
    if settings.trust_forwarded:
        core.client_address = forwarded_client

    async def refuse(client: str, token: str, endpoint: str) -> None:
        if await throttle.refuse(client, token) > 0:
            metrics('auth_throttled', endpoint)

    async def start(app: web.Application) -> None:
        await broker.start()
        await core.start()
        if watchers is not None:
            await watchers.start()

    async def stop(app: web.Application) -> None:
        if watchers is not None:
            await watchers.close()
        await core.close()
        await broker.close()
        if recorder is not None:
            await recorder.close()
        await speech.store.close()

    async def health(request: web.Request) -> web.Response:
        ok = await broker.healthy()
        return web.json_response({'ok': ok, 'status': 'ok' if ok else 'degraded',
                                  'instance': core.instance,
                                  'shared_state': 'redis' if settings.redis_url else 'memory'},
                                 status=200 if ok else 503)

    async def status(request: web.Request) -> web.Response:
        token = request_token(request.headers, {})
        if not token or accounts.known_user(token) is None:
            await refuse(core.client_address(request), token, 'status')
            raise web.HTTPUnauthorized(text='a user token is needed')
        try:
            robots = [{'robot_id': robot_id, 'online': await broker.is_online(robot_id),
                       'driver': await broker.driver(robot_id)}
                      for robot_id in accounts.robots if accounts.user(token, robot_id) is not None]
        except BrokerUnavailable:
            raise web.HTTPServiceUnavailable(text='shared state unavailable; try again') from None
        return web.json_response({'instance': core.instance, 'robots': robots})

    async def speech_user(request: web.Request) -> str:
        token = request_token(request.headers, {})
        user = accounts.known_user(token) if token else None
        if user is None:
            await refuse(core.client_address(request), token, 'speech')
            raise web.HTTPUnauthorized(text='a user token is needed')
        return user

    speech = SpeechApi(speech_store(settings), speech_user)
    core.on_say = speech.spoke

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry),
                            headers={'Content-Type': CONTENT_TYPE_LATEST})

    async def mediamtx_auth(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text='JSON expected') from None
        allowed = mediamtx_allows(accounts, body, settings.admin_token)
        if not allowed:
            # MediaMTX asks for its client: key by the client's address. Requests with
            # no credentials at all (RTSP's first try before the challenge) are no guess.
            await refuse(str(body.get('ip') or ''), presented_secret(body), 'mediamtx')
            log.info('MediaMTX %s on %r refused for %r from %s', body.get('action'),
                     body.get('path'), body.get('user') or '(token)', body.get('ip'))
        elif watchers is not None and body.get('action') == 'read' and '/' not in str(body.get('path')):
            await watchers.reader_arrives(str(body.get('path')))  # the robot encodes on demand
        return web.Response(status=200 if allowed else 401)

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB_DIR / 'index.html')

    async def site(request: web.Request) -> web.Response:
        return web.json_response(site_info(settings))

    async def robot_user(request: web.Request) -> tuple[str, str]:
        """The robot in the path and the request's token, if its user may watch that robot."""
        robot_id, token = request.match_info['robot'], request_token(request.headers, {})
        if not token or accounts.user(token, robot_id) is None:
            await refuse(core.client_address(request), token, 'recordings')
            raise web.HTTPUnauthorized(text='a user token for this robot is needed')
        if recorder is None:
            raise web.HTTPNotFound(text='recording is not set up on this server')
        return robot_id, token

    async def recordings(request: web.Request) -> web.Response:
        robot_id, token = await robot_user(request)
        try:
            return web.json_response({'recording': await recorder.recording(robot_id),
                                      'may_record': accounts.may_record(token, robot_id),
                                      'files': await recorder.files(robot_id)})
        except RecorderError as exc:
            raise web.HTTPBadGateway(text=str(exc)) from None

    async def set_recording(request: web.Request) -> web.Response:
        robot_id, token = await robot_user(request)
        if not accounts.may_record(token, robot_id):
            raise web.HTTPForbidden(text='this user may not record')
        try:
            on = (await request.json())['record']
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text='{"record": true|false} expected') from None
        if not isinstance(on, bool):
            raise web.HTTPBadRequest(text='{"record": true|false} expected')
        try:
            await recorder.set_recording(robot_id, on)
            log.info('recording of %s %s by %s', robot_id, 'started' if on else 'stopped',
                     accounts.known_user(token))
            return web.json_response({'recording': await recorder.recording(robot_id)})
        except RecorderError as exc:
            raise web.HTTPBadGateway(text=str(exc)) from None

    async def download(request: web.Request) -> web.StreamResponse:
        robot_id, _ = await robot_user(request)
        start = request.match_info['start']
        try:
            duration = float(request.query.get('duration', ''))
        except ValueError:
            duration = 0.0
        if not START.match(start) or not 0 < duration <= 24 * 3600:
            raise web.HTTPBadRequest(text='a recording start (ISO 8601, UTC) and ?duration= (s) expected')
        try:
            upstream = await recorder.download(robot_id, start, duration)
        except RecorderError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        name = f"{robot_id}-{start[:19].replace(':', '-')}Z.mp4"
        response = web.StreamResponse(headers={'Content-Type': 'video/mp4',
                                               'Content-Disposition': f'attachment; filename="{name}"'})
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await response.write(chunk)
        finally:
            upstream.release()
        return response

    app.router.add_get('/ws', core.handle)
    app.router.add_get('/health', health)
    app.router.add_get('/api/status', status)
    app.router.add_get('/metrics', prometheus)
    app.router.add_post('/mediamtx/auth', mediamtx_auth)
    robot = '/api/robots/{robot:[A-Za-z0-9_-]{1,64}}'
    app.router.add_get(f'{robot}/recordings', recordings)
    app.router.add_post(f'{robot}/recording', set_recording)
    app.router.add_get(f'{robot}/recordings/{{start}}', download)
    speech.add_routes(app.router)
    if WEB_DIR.is_dir():
        app.router.add_get('/', index)
        app.router.add_get(SITE_PATH, site)  # before the static files it sits among
        app.router.add_static('/web/', WEB_DIR)
    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app['core'] = core
    return app


def speech_store(settings: Settings) -> SpeechStore:
    """Where the users' phrases and word histories are kept (``Settings.data_dir``)."""
    if settings.redis_url:
        return RedisSpeechStore(settings.redis_url)
    if settings.data_dir is not None:
        return FileSpeechStore(settings.data_dir / 'speech.json')
    log.warning('no redis_url nor data_dir: phrase boards are kept in memory only')
    return SpeechStore()


def recording_set_up(settings: Settings) -> bool:
    return bool(settings.mediamtx_api_url and settings.mediamtx_playback_url and settings.admin_token)


def site_info(settings: Settings) -> dict[str, Any]:
    """What the web UI needs to know of the site that served it (``/web/site.json``)."""
    return {'site': 'cloud', 'webrtc_url': settings.webrtc_url.rstrip('/'),
            'hls_url': settings.hls_url.rstrip('/'), 'recording': recording_set_up(settings)}


def forwarded_client(request: web.Request) -> str:
    """The client behind a trusted reverse proxy: the last X-Forwarded-For entry."""
    forwarded = request.headers.get('X-Forwarded-For', '').rsplit(',', 1)[-1].strip()
    return forwarded or request.remote or ''


def presented_secret(request: dict[str, Any]) -> str:
    """Whatever credentials a MediaMTX hook body carries (empty: none presented)."""
    query = {k: v[0] for k, v in parse_qs(str(request.get('query') or '')).items()}
    return str(request.get('password') or '') or str(request.get('token') or '') or request_token({}, query)


def mediamtx_allows(accounts: Accounts, request: dict[str, Any], admin_token: str = '') -> bool:
    """MediaMTX's question "may this client do ``action`` on ``path``?", answered."""
    action = str(request.get('action', ''))
    path = str(request.get('path', ''))
    user = str(request.get('user') or '')
    secret = str(request.get('password') or '')
    token = str(request.get('token') or '') or request_token(
        {}, {k: v[0] for k, v in parse_qs(str(request.get('query') or '')).items()})
    robot_id, _, sub = path.partition('/')
    if action in ('api', 'metrics', 'pprof', 'playback'):
        return token_matches(token, admin_token) or token_matches(secret, admin_token)
    if sub not in ('', 'talk'):
        return False
    robot_login = user == robot_id and accounts.robot(robot_id, secret)
    if action == 'publish':
        if sub == '':
            return robot_login
        return accounts.user(token or secret, robot_id) is not None  # browser push-to-talk
    if action == 'read':
        if sub == 'talk':
            return robot_login
        return robot_login or accounts.user(token or secret, robot_id) is not None
    return False


def main(args: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='relay_server', description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', type=Path)
    parser.add_argument('--host')
    parser.add_argument('--port', type=int)
    parser.add_argument('--redis-url')
    parser.add_argument('--instance-id')
    parser.add_argument('--data-dir', type=Path)
    options = parser.parse_args(args)
    overrides = {k: v for k, v in vars(options).items() if v is not None}
    try:
        settings = Settings(**overrides)
        if settings.config is not None and not settings.config.is_file():
            raise ValueError(f'config file {settings.config} not found')
    except ValueError as exc:
        print(f'relay_server: {exc}', file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    log.info('relay %s listening on %s:%d (state: %s)', settings.instance_id or '(auto id)',
             settings.host, settings.port, 'redis' if settings.redis_url else 'memory')
    # once the socket listens, tell systemd (Type=notify in systemd/havatar-relay.service)
    run_app(create_app(settings), settings.host, settings.port, settings.max_connections_per_client,
            on_ready=lambda: notify('READY=1'), loop_factory=event_loop_factory())
    return 0


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop: uvloop's when it is installed (faster sockets and callbacks), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop  # type: ignore[no-any-return]


if __name__ == '__main__':
    sys.exit(main())
