"""No aiohttp server waits forever for a client (ROS-free).

- Header timeout: aiohttp's ``keepalive_timeout`` is armed when a connection opens and
  re-armed only after a response, and partial header bytes do not extend it; so a
  connection that has not completed a request within ``HEADER_TIMEOUT_S`` of opening (or
  of its last response) is closed. A request being handled (a WebSocket, the MJPEG
  stream) is not affected.
- Connection cap: at most ``per_client`` live connections per peer address; beyond it a
  new connection is closed at once, before anything is read (so no verdict on a token).
- Body deadline: aiohttp has no timeout on a request's body, so a client that sends its
  headers then dribbles the body would keep a handler waiting forever. Every request's
  body is read (before any handler or authentication, up to the app's
  ``client_max_size``) within ``BODY_TIMEOUT_S`` of its headers, or answered 408 and its
  connection closed. Handlers then read the body from memory.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
MAX_CONNECTIONS_PER_CLIENT = 64


def server_options(header_timeout_s: float = HEADER_TIMEOUT_S) -> dict[str, Any]:
    """``AppRunner`` options: the header (and idle keep-alive) timeout, header size limits."""
    return {'keepalive_timeout': header_timeout_s, 'max_line_size': 8190, 'max_field_size': 8190,
            'max_headers': 64}


class ConnectionCap:
    """Live connections per client address (``per_client <= 0``: no cap)."""

    def __init__(self, per_client: int = MAX_CONNECTIONS_PER_CLIENT) -> None:
        self.per_client = per_client
        self.live: dict[str, int] = {}
        self.refused = 0

    def opened(self, client: str) -> bool:
        """Count a new connection of ``client``; False (not counted) if over the cap."""
        count = self.live.get(client, 0)
        if 0 < self.per_client <= count:
            self.refused += 1
            return False
        self.live[client] = count + 1
        return True

    def closed(self, client: str) -> None:
        count = self.live.get(client, 0) - 1
        if count > 0:
            self.live[client] = count
        else:
            self.live.pop(client, None)


def cap_connections(server: web.Server, per_client: int = MAX_CONNECTIONS_PER_CLIENT) -> ConnectionCap:
    """Enforce a ``ConnectionCap`` on ``server`` (an ``AppRunner``'s ``server`` after setup)."""
    cap = ConnectionCap(per_client)
    made, lost = server.connection_made, server.connection_lost
    clients: dict[Any, str] = {}

    def connection_made(handler: Any, transport: asyncio.Transport) -> None:
        made(handler, transport)
        peer = transport.get_extra_info('peername')
        client = str(peer[0]) if peer else ''
        if cap.opened(client):
            clients[handler] = client
        else:  # after aiohttp has set the connection up (its task must see a live handler)
            transport.pause_reading()
            asyncio.get_running_loop().call_soon(transport.abort)

    def connection_lost(handler: Any, exc: Optional[BaseException] = None) -> None:
        client = clients.pop(handler, None)
        if client is not None:
            cap.closed(client)
        lost(handler, exc)

    server.connection_made = connection_made  # type: ignore[method-assign]
    server.connection_lost = connection_lost  # type: ignore[method-assign]
    return cap


def body_deadline(timeout_s: float = BODY_TIMEOUT_S) -> Middleware:
    """A middleware reading each request's whole body within ``timeout_s``, else 408 and close."""
    @web.middleware
    async def read_body_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                await asyncio.wait_for(request.read(), timeout_s)
            except asyncio.TimeoutError:
                response = web.Response(status=408, text='the request body came too slowly\n')
                response.force_close()
                await response.prepare(request)
                await response.write_eof()
                # the rest of the body is not waited for (aiohttp would linger on it)
                request.protocol.force_close()
                return response
        return await handler(request)
    return read_body_in_time


def bound_bodies(app: web.Application, timeout_s: float = BODY_TIMEOUT_S) -> None:
    """Put ``body_deadline`` first in ``app``'s middlewares (before the app is frozen)."""
    app.middlewares.insert(0, body_deadline(timeout_s))


def run_app(app: web.Application, host: str, port: int, per_client: int = MAX_CONNECTIONS_PER_CLIENT,
            header_timeout_s: float = HEADER_TIMEOUT_S, on_ready: Callable[[], None] = lambda: None,
            body_timeout_s: float = BODY_TIMEOUT_S,
            loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop) -> None:
    """``web.run_app`` with the header timeout, the body deadline and the connection cap
    (until SIGINT/SIGTERM); ``on_ready`` is called once the socket listens; ``loop_factory``
    makes the event loop.
    """
    bound_bodies(app, body_timeout_s)
    loop = loop_factory()
    runner = web.AppRunner(app, handle_signals=True, access_log=None,
                            **server_options(header_timeout_s))
    try:
        loop.run_until_complete(runner.setup())
        assert runner.server is not None
        cap_connections(runner.server, per_client)
        loop.run_until_complete(web.TCPSite(runner, host, port).start())
        on_ready()
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        loop.run_until_complete(runner.cleanup())
        loop.close()
