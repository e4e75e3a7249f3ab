"""Server mode: the robot as a WebSocket client of the cloud relay.

Says ``hello`` as role robot, pings the relay every heartbeat (the round trips give the
``ClockOffset`` that turns the relay's command stamps into this robot's clock), answers the
relay's pings, and hands every other message to ``on_message``.

The link never gives up: every way a connection can end -- refused, closed with any code,
reset, silent for ``SILENT_HEARTBEATS`` heartbeats (a frozen relay or a black-holed network
never closes anything), a message it cannot handle -- ends in ``on_link(False)`` (the robot
stops at once) and a new attempt after an exponential back-off with jitter.
"""
from __future__ import annotations

import asyncio
import logging
import random
import traceback
from typing import Any, Awaitable, Callable, Optional

import aiohttp

from . import protocol as p

SILENT_HEARTBEATS = 3
CONNECT_TIMEOUT_S = 10.0  # for the WebSocket upgrade, then again for the welcome
OUTBOX = 256              # frames waiting for a slow link; more are dropped


class Backoff:
    """Exponential back-off with jitter (so robots do not all return to a relay at once)."""

    def __init__(self, first: float = 0.5, longest: float = 30.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.first, self.longest = first, longest
        self._next = first
        self._rng = rng

    def reset(self) -> None:
        self._next = self.first

    def next(self) -> float:
        delay = self._next * (0.5 + 0.5 * self._rng())
        self._next = min(self.longest, self._next * 2)
        return delay


class RelayRefused(Exception):
    """The relay did not welcome the robot (wrong token, unknown robot, relay not ready)."""


class CloudClient:
    def __init__(self, url: str, robot_id: str, token: str,
                 on_message: Callable[[p.Message], Awaitable[None]],
                 on_link: Callable[[bool], None], backoff: Optional[Backoff] = None,
                 logger: Any = None) -> None:
        """``on_message`` must not wait for slow work: the link reads nothing meanwhile.
        ``logger``: anything with ``info``/``warning``/``error`` taking one string (the node's).
        """
        self.url = url
        self.robot_id = robot_id
        self._token = token
        self.on_message = on_message
        self.on_link = on_link
        self.backoff = backoff or Backoff()
        self.clock = p.ClockOffset()
        self.version = p.PROTOCOL_VERSION  # lowered to 1 when the relay speaks only that
        self.connected = False
        self.last_error = ''
        self._outbox: Optional[asyncio.Queue[str]] = None
        self.log = logger or logging.getLogger('havatar_relay.cloud')

    async def send(self, message: p.Message) -> bool:
        """Queue ``message`` for the relay; False when not connected or the link is backed up."""
        if self._outbox is None:
            return False
        try:
            self._outbox.put_nowait(p.dump(message))
            return True
        except asyncio.QueueFull:
            return False

    async def run(self) -> None:
        """Stay connected until cancelled."""
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    self.last_error = await self._session(session)
                except asyncio.CancelledError:
                    raise
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError, RelayRefused,
                        p.ProtocolError) as exc:
                    self.last_error = str(exc) or type(exc).__name__
                except Exception as exc:  # a bug must not end the robot's link for good
                    self.last_error = f'{type(exc).__name__}: {exc}'
                    self.log.error(f'cloud relay client: {traceback.format_exc()}')
                finally:
                    self._outbox = None
                    if self.connected:
                        self.connected = False
                        self.on_link(False)
                delay = self.backoff.next()
                self.log.warning(f'cloud relay {self.url}: {self.last_error}; reconnecting in {delay:.1f} s')
                await asyncio.sleep(delay)

    async def _session(self, session: aiohttp.ClientSession) -> str:
        """One connection, from hello to its end; returns why it ended."""
        ws = await asyncio.wait_for(session.ws_connect(
            self.url, heartbeat=None, max_msg_size=p.MAX_MESSAGE_BYTES * 2), CONNECT_TIMEOUT_S)
        async with ws:
            await ws.send_str(p.dump(p.Hello(role=p.Role.ROBOT, token=self._token, v=self.version,
                                             robot_id=self.robot_id, client='havatar relay_node')))
            frame = await ws.receive(timeout=CONNECT_TIMEOUT_S)
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise RelayRefused(f'closed before the welcome ({frame.type.name} {frame.data!r} '
                                   f'{frame.extra or ""})'.strip())
            reply = p.parse(frame.data)
            if (isinstance(reply, p.Error) and reply.code is p.ErrorCode.UNSUPPORTED_VERSION
                    and self.version > 1):
                self.version = 1  # a relay older than this robot: the next attempt says v1
            if not isinstance(reply, p.Welcome):
                raise RelayRefused(getattr(reply, 'message', f'{reply.type} instead of welcome'))  # type: ignore[attr-defined]
            self.clock = p.ClockOffset()  # a new connection may go through another relay
            self._outbox = asyncio.Queue(OUTBOX)
            self.connected = True
            self.backoff.reset()
            self.on_link(True)
            self.log.info(f'connected to the cloud relay {self.url} as {self.robot_id}')
            heartbeat = reply.heartbeat_ms / 1000.0
            helpers = [asyncio.create_task(self._ping(heartbeat)),
                       asyncio.create_task(self._write(ws, self._outbox))]
            try:
                return await self._read(ws, SILENT_HEARTBEATS * heartbeat)
            finally:
                for task in helpers:
                    task.cancel()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, silence: float) -> str:
        while True:
            try:
                frame = await ws.receive(timeout=silence)
            except asyncio.TimeoutError:
                return f'relay silent for {silence:.1f} s'  # leaving the context closes it
            if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return f'connection closed ({frame.type.name} {frame.data!r})'
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                message = p.parse(frame.data)
            except p.ProtocolError as exc:
                await self.send(exc.to_message())
                continue
            if isinstance(message, p.Ping):
                await self.send(p.Pong(ts=message.ts, peer_ts=p.now_ms()))
            elif isinstance(message, p.Pong):
                if message.ts is not None:
                    self.clock.add(message.ts, message.peer_ts, p.now_ms())
            else:
                await self._deliver(message)

    async def _deliver(self, message: p.Message) -> None:
        if message.ts is not None and self.clock.known:  # relay clock -> this robot's clock
            message = message.model_copy(update={'ts': max(0.0, self.clock.to_local(message.ts))})
        try:
            await self.on_message(message)
        except Exception as exc:  # one message never ends the link
            self.log.error(f'handling {message.type} from the relay: '  # type: ignore[attr-defined]
                           f'{traceback.format_exc()}')
            await self.send(p.Error(code=p.ErrorCode.INTERNAL, message=f'robot failed: {exc}'[:200],
                                    id=message.id, ts=p.now_ms()))

    async def _ping(self, interval: float) -> None:
        while True:
            await self.send(p.Ping(ts=p.now_ms()))
            await asyncio.sleep(interval)

    @staticmethod
    async def _write(ws: aiohttp.ClientWebSocketResponse, outbox: asyncio.Queue[str]) -> None:
        while True:
            frame = await outbox.get()
            try:
                await ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return  # the reader sees the close
