"""The robot's own web server (local mode): the web UI, the relay protocol at ``/ws``, the
robot's microphone at ``/audio/ws`` (``audio_stream``), the driver's microphone at ``/talk/ws``
(``talk_server``), the original Flask robot's HTTP API and the speech endpoints (``/api/``:
``speech_api``), documented in ``doc/ROBOT_HTTP_API.md``.

aiohttp on a thread with its own event loop (``BackgroundServer``). Every request except
``/`` and the static files needs the robot's access token (``Authorization: Bearer`` or
``?token=``); the WebSocket's ``hello`` carries it. A wrong token is answered late, more so
the more an address guesses (``havatar_common.auth_throttle``; a right token never waits);
``/system_status`` counts those (``auth_throttled``) and the connections refused by the
per-client cap (``connections_refused``).
"""
from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

from aiohttp import web

from havatar_common.aio_server import BackgroundServer
from havatar_common.auth import request_token, token_matches

from .audio_stream import AudioHub
from .relay_core import RelayCore
from .speech_api import SpeechApi
from .talk_server import TalkEndpoint

WEB_DIR = Path(__file__).resolve().parent / 'web'


class RobotApi(Protocol):
    """The HTTP API's answers (``robot_api.RobotHttpApi``; called on the server's event loop)."""

    async def server_status(self) -> dict[str, Any]: ...
    async def set_server_mode(self, enabled: bool) -> dict[str, Any]: ...
    def server_config(self) -> dict[str, Any]: ...
    async def save_server_config(self, config: dict[str, Any]) -> dict[str, Any]: ...
    async def test_connection(self, config: dict[str, Any]) -> dict[str, Any]: ...
    def system_status(self) -> dict[str, Any]: ...


class LocalServer:
    def __init__(self, core: RelayCore, api: RobotApi, host: str, port: int, token: str,
                 audio: AudioHub | None = None, *, talk: TalkEndpoint | None = None,
                 speech: SpeechApi | None = None) -> None:
        self.core = core
        self.audio = audio
        self.api = api
        self.token = token
        self.talk = talk
        self.speech = speech
        self._server = BackgroundServer('local-server', host, port)
        self._started = time.monotonic()
        self._requests = 0  # the original /system_status app_state.total_requests

    def start(self, on_loop: Callable[[], Awaitable[None]]) -> None:
        """Serve in the background; ``on_loop`` runs first on the server's loop."""
        self._on_loop = on_loop
        self._server.start(self._app)

    def call(self, coro: Awaitable[Any]) -> concurrent.futures.Future[Any]:
        """Run a coroutine on the server's loop from another thread (fire and forget)."""
        return self._server.call(coro)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the server's loop from another thread (fire and forget)."""
        self._server.loop.call_soon_threadsafe(callback, *args)

    def stop(self) -> None:
        self._server.stop(before=self.core.close)

    async def _app(self) -> web.Application:
        await self.core.start()
        await self._on_loop()  # set by start()
        app = web.Application(middlewares=[self._auth])
        app.router.add_get('/', self._index)
        app.router.add_get('/web/site.json', self._site)  # before the static files it sits among
        app.router.add_static('/web/', WEB_DIR)
        app.router.add_get('/ws', self.core.handle)  # hello carries the token
        if self.talk is not None:
            app.router.add_get('/talk/ws', self.talk.handle)  # so does this one's
        app.router.add_get('/server/status', self._server_status)
        app.router.add_post('/server/start', self._server_start)
        app.router.add_post('/server/stop', self._server_stop)
        app.router.add_get('/server/config', self._get_config)
        app.router.add_post('/server/config', self._post_config)
        app.router.add_post('/server/test', self._test_connection)
        app.router.add_get('/system_status', self._system_status)
        if self.audio is not None:
            app.router.add_get('/audio/ws', self.audio.handle)  # the robot's microphone, PCM
        if self.speech is not None:  # phrases, recent phrases, word prediction (/api/...)
            self.speech.add_routes(app.router)
            self.core.on_say = self.speech.spoke
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self._requests += 1
        if request.path.startswith(('/server/', '/system_status', '/audio/', '/api/')):
            token = request_token(request.headers, request.query)
            if not token_matches(token, self.token):
                await self.core.throttle.refuse(self.core.client_address(request), token)
                raise web.HTTPUnauthorized(text='the robot access token is needed')
        return await handler(request)

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / 'index.html')

    async def _site(self, request: web.Request) -> web.Response:
        # the robot serves the page: its MJPEG server is reachable from here, MediaMTX
        # (another host, other tokens) is the cloud page's business
        return web.json_response({'site': 'robot'})

    async def _server_status(self, request: web.Request) -> web.Response:
        return web.json_response(await self.api.server_status())

    async def _server_start(self, request: web.Request) -> web.Response:
        return web.json_response(await self.api.set_server_mode(True))

    async def _server_stop(self, request: web.Request) -> web.Response:
        return web.json_response(await self.api.set_server_mode(False))

    async def _get_config(self, request: web.Request) -> web.Response:
        return web.json_response(self.api.server_config())

    @staticmethod
    async def _json_object(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise ValueError('the body must be JSON') from None
        if not isinstance(body, dict):
            raise ValueError('a JSON object is expected')
        return body

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(await self.api.save_server_config(await self._json_object(request)))
        except ValueError as exc:  # nothing saved; the original {ok, msg} and this version's fields
            return web.json_response({'ok': False, 'msg': str(exc), 'success': False, 'error': str(exc)},
                                     status=400)

    async def _test_connection(self, request: web.Request) -> web.Response:
        try:
            body = await self._json_object(request)
        except ValueError as exc:
            return web.json_response({'ok': False, 'msg': str(exc), 'error': 'invalid'}, status=400)
        return web.json_response(await self.api.test_connection(body))

    async def _system_status(self, request: web.Request) -> web.Response:
        app_state = {'uptime': round(time.monotonic() - self._started, 1),
                     'clients_connected': sum(len(s) for s in self.core.users.values()),
                     'total_requests': self._requests, 'audio_streaming_active': False}
        return web.json_response({**self.api.system_status(), 'app_state': app_state,
                                  'auth_throttled': self.core.throttle.throttled,
                                  'connections_refused': self._server.cap.refused})
