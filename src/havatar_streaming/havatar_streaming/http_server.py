"""The local MJPEG server: ``/stream.mjpg``, ``/snapshot.jpg``, ``/health``, ``/stats``.

aiohttp on a thread of its own with its own event loop (``BackgroundServer``), so the ROS
executor never waits on a viewer. Every request but ``/health`` must carry the robot's
access token (``?token=`` or ``Authorization: Bearer``), unless the server was explicitly
made ``anonymous`` (an open LAN camera). A wrong token is answered late, more so the more
an address guesses (``havatar_common.auth_throttle``; a right token never waits).
``/stats`` counts those (``auth_throttled``) and the connections refused by the
per-client cap (``connections_refused``).
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from aiohttp import web

from havatar_common.aio_server import BackgroundServer
from havatar_common.auth import request_token, token_matches
from havatar_common.auth_throttle import AuthThrottle

from .mjpeg import FrameHub

BOUNDARY = 'havatarframe'
# the web UI (another port, so another origin) may read the pixels it shows: its snapshot
# button draws them into a JPEG. Every request still needs the token.
READABLE = {'Access-Control-Allow-Origin': '*'}


class MjpegServer:
    def __init__(self, hub: FrameHub, host: str, port: int, access_token: str,
                 stats: Callable[[], dict[str, Any]] = dict, anonymous: bool = False) -> None:
        if not access_token and not anonymous:
            raise ValueError('the MJPEG server needs an access token unless it is anonymous')
        self.hub = hub
        self.access_token = access_token
        self.anonymous = anonymous
        self.stats = stats
        self.throttle = AuthThrottle()
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix='mjpeg')
        self._server = BackgroundServer('mjpeg-http', host, port)
        self._stopping = False

    def start(self) -> None:
        """Bind the port (raises OSError if taken) and serve in the background."""
        self._server.start(self._app)

    async def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get('/stream.mjpg', self._stream)
        app.router.add_get('/snapshot.jpg', self._snapshot)
        app.router.add_get('/health', self._health)
        app.router.add_get('/stats', self._stats)
        return app

    def stop(self) -> None:
        self._stopping = True
        self._server.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not self.anonymous and request.path != '/health':
            token = request_token(request.headers, request.query)
            if not token_matches(token, self.access_token):
                await self.throttle.refuse(request.remote or '', token)
                raise web.HTTPUnauthorized(text='a valid token is needed')
        return await handler(request)

    async def _next(self, after: int, timeout: float) -> Optional[tuple[int, bytes]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.hub.latest_jpeg, after, timeout)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            'Content-Type': f'multipart/x-mixed-replace; boundary={BOUNDARY}',
            'Cache-Control': 'no-cache, no-store, private', 'Pragma': 'no-cache', **READABLE})
        await response.prepare(request)
        self.hub.viewers += 1
        sequence = 0
        try:
            while not self._stopping:
                item = await self._next(sequence, 1.0)
                if item is None:
                    continue
                sequence, jpeg = item
                await response.write(
                    f'--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n'
                    .encode() + jpeg + b'\r\n')
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.hub.viewers -= 1
        return response

    async def _snapshot(self, request: web.Request) -> web.Response:
        self.hub.viewers += 1
        try:
            item = await self._next(0, 5.0)
        finally:
            self.hub.viewers -= 1
        if item is None:
            raise web.HTTPServiceUnavailable(text='no camera frame yet')
        return web.Response(body=item[1], content_type='image/jpeg',
                            headers={'Cache-Control': 'no-cache', **READABLE})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({'ok': True})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({'viewers': self.hub.viewers, 'jpeg_encodes': self.hub.encodes,
                                  'frames_in': self.hub.frames_in, 'auth_throttled': self.throttle.throttled,
                                  'connections_refused': self._server.cap.refused, **self.stats()})
