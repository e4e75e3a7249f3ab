"""Server mode: the robot as a WebSocket client of the cloud relay.

Says hello as role robot, answers and sends pings (the clock offset to the relay turns the
commands' relay-clock stamps into this robot's clock), hands every command to
``on_message``, and reconnects with exponential back-off. ``on_link(False)`` is called the
moment the connection is lost, so the robot stops at once.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Optional

import aiohttp

from . import protocol as p

log = logging.getLogger('havatar_relay.cloud')


class CloudClient:
    def __init__(self, url: str, robot_id: str, token: str,
                 on_message: Callable[[p.Message], Awaitable[None]],
                 on_link: Callable[[bool], None], backoff_min: float = 0.5,
                 backoff_max: float = 30.0) -> None:
        self.url = url
        self.robot_id = robot_id
        self.token = token
        self.on_message = on_message
        self.on_link = on_link
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.clock = p.ClockOffset()
        self.connected = False
        self.last_error = ''
        self._ws: Optional[aiohttp.ClientWebSocketResponse] = None

    async def send(self, message: p.Message) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            try:
                await ws.send_str(p.dump(message))
            except (ConnectionError, RuntimeError):
                pass

    async def run(self) -> None:
        backoff = self.backoff_min
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    await self._session(session)
                    backoff = self.backoff_min
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError, PermissionError) as exc:
                    self.last_error = str(exc) or type(exc).__name__
                    log.warning('relay connection failed: %s; retrying in %.1f s', self.last_error, backoff)
                finally:
                    if self.connected:
                        self.connected = False
                        self.on_link(False)
                    self._ws = None
                await asyncio.sleep(backoff)
                backoff = min(self.backoff_max, backoff * 2)

    async def _session(self, session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(self.url, heartbeat=None, timeout=10) as ws:
            await ws.send_str(p.dump(p.Hello(role=p.Role.ROBOT, token=self.token,
                                             robot_id=self.robot_id, client='havatar relay_node')))
            reply = p.parse((await ws.receive(timeout=10)).data)
            if not isinstance(reply, p.Welcome):
                raise PermissionError(getattr(reply, 'message', 'relay refused the robot'))
            self._ws = ws
            self.connected = True
            self.last_error = ''
            self.on_link(True)
            log.info('connected to the relay at %s', self.url)
            pinger = asyncio.create_task(self._ping(ws, reply.heartbeat_ms / 1000))
            try:
                async for frame in ws:
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        continue
                    try:
                        message = p.parse(frame.data)
                    except p.ProtocolError as exc:
                        await ws.send_str(p.dump(exc.to_message()))
                        continue
                    if isinstance(message, p.Ping):
                        await ws.send_str(p.dump(p.Pong(ts=message.ts, peer_ts=p.now_ms())))
                    elif isinstance(message, p.Pong):
                        if message.ts is not None:
                            self.clock.add(message.ts, message.peer_ts, p.now_ms())
                    else:
                        if message.ts is not None and self.clock.known:
                            message = message.model_copy(update={'ts': self.clock.to_local(message.ts)})
                        await self.on_message(message)
            finally:
                pinger.cancel()

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
        while not ws.closed:
            await ws.send_str(p.dump(p.Ping(ts=p.now_ms())))
            await asyncio.sleep(interval)
