"""An aiohttp server on an event loop of its own thread (ROS-free).

ROS callbacks never wait on a network peer and the web side never waits on the ROS
executor: the two meet only through ``call`` (a coroutine onto the loop) and thread-safe
state. Used by the MJPEG server and the robot's local web server. A connection has
``HEADER_TIMEOUT_S`` for its request headers, ``BODY_TIMEOUT_S`` for its body, and each
client address a connection cap (``conn_limits``).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web

from .conn_limits import (BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS_PER_CLIENT, ConnectionCap,
                          bound_bodies, cap_connections, server_options)

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class BackgroundServer:
    """Serves the app ``make_app()`` returns on ``host:port`` from a background thread."""

    def __init__(self, name: str, host: str, port: int,
                 per_client: int = MAX_CONNECTIONS_PER_CLIENT,
                 header_timeout_s: float = HEADER_TIMEOUT_S, body_timeout_s: float = BODY_TIMEOUT_S) -> None:
        self.name = name
        self.host, self.port = host, port
        self.header_timeout_s, self.body_timeout_s = header_timeout_s, body_timeout_s
        self.cap = ConnectionCap(per_client)  # replaced by the live one at start
        self.loop = asyncio.new_event_loop()
        self._runner: Optional[web.AppRunner] = None
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def start(self, make_app: Callable[[], Awaitable[web.Application]]) -> None:
        """Build the app on the loop and bind the port; raises (OSError: port taken) here."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(make_app), self.loop).result(START_TIMEOUT_S)

    async def _start(self, make_app: Callable[[], Awaitable[web.Application]]) -> None:
        app = await make_app()
        bound_bodies(app, self.body_timeout_s)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     **server_options(self.header_timeout_s))
        await self._runner.setup()
        assert self._runner.server is not None
        self.cap = cap_connections(self._runner.server, self.cap.per_client)
        await web.TCPSite(self._runner, self.host, self.port).start()

    def call(self, coro: Awaitable[Any]) -> concurrent.futures.Future[Any]:
        """Run ``coro`` on the server's loop from any thread (fire and forget, or wait)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def stop(self, before: Optional[Callable[[], Awaitable[None]]] = None) -> None:
        """Run ``before`` on the loop, close the server and its connections, end the thread."""
        if self._thread.is_alive():
            self.call(self._stop(before)).result(STOP_TIMEOUT_S)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)

    async def _stop(self, before: Optional[Callable[[], Awaitable[None]]]) -> None:
        if before is not None:
            await before()
        if self._runner is not None:
            await self._runner.cleanup()
        # what else runs on this loop (a node's background tasks) ends with it, not pending
        # until the garbage collector finds it
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=1.0)
