"""The cloud relay server (executable ``relay_server``; needs no ROS).

    relay_server --config relay.yaml [--host 0.0.0.0] [--port 8090] [--redis-url redis://...]

Endpoints: ``GET /ws`` (the relay protocol, users and robots), ``GET /api/status``
(Bearer user token: that user's robots), ``GET /health``, ``GET /metrics`` (Prometheus),
``POST /mediamtx/auth`` (MediaMTX's HTTP authentication hook: the same tokens decide who
may publish, watch and talk), and the web UI at ``/``.

The config file (YAML) holds the accounts; tokens may be written as ``sha256:<hex>``::

    robots: {robot1: {token: "..."}}
    users: {alice: {token: "...", robots: [robot1]}, ops: {token: "...", robots: ["*"]}}
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
from ..session import Limits

WEB_DIR = Path(__file__).resolve().parents[1] / 'web'
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


def load_accounts(path: Optional[Path]) -> Accounts:
    if path is None:
        return Accounts()
    data = yaml.safe_load(path.read_text()) or {}
    robots = {rid: str(entry['token']) for rid, entry in (data.get('robots') or {}).items()}
    users = {name: (str(entry['token']), list(entry.get('robots') or []))
             for name, entry in (data.get('users') or {}).items()}
    return Accounts(robots, users)


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
    if settings.trust_forwarded:
        core.client_address = forwarded_client

    async def refuse(client: str, token: str, endpoint: str) -> None:
        if await throttle.refuse(client, token) > 0:
            metrics('auth_throttled', endpoint)

    async def start(app: web.Application) -> None:
        await broker.start()
        await core.start()

    async def stop(app: web.Application) -> None:
        await core.close()
        await broker.close()

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
        return web.Response(status=200 if allowed else 401)

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB_DIR / 'index.html')

    app.router.add_get('/ws', core.handle)
    app.router.add_get('/health', health)
    app.router.add_get('/api/status', status)
    app.router.add_get('/metrics', prometheus)
    app.router.add_post('/mediamtx/auth', mediamtx_auth)
    if WEB_DIR.is_dir():
        app.router.add_get('/', index)
        app.router.add_static('/web/', WEB_DIR)
    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app['core'] = core
    return app


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
