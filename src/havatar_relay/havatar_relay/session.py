"""One WebSocket connection of the relay after its hello, its rate limit, and the limits
the relay applies to every connection.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from aiohttp import WSCloseCode, web

from . import protocol as p

log = logging.getLogger('havatar_relay')


class TokenBucket:
    """Rate limit: ``rate`` messages per second with bursts of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()
        self.refused = 0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refused += 1
        return False


@dataclass
class Limits:
    user_rate: float = 60.0       # messages/s (drive at 50 Hz plus pings fits)
    user_burst: float = 120.0
    robot_rate: float = 200.0
    robot_burst: float = 400.0
    abuse_refusals: int = 500     # refused messages before the connection is closed
    heartbeat_s: float = 1.0      # ping interval; silent for 3 intervals = gone
    lease_period_s: float = 0.2   # how often the robot hears that its driver is live

    @property
    def lease_ttl_ms(self) -> int:
        """How long one lease lets a held command go on: three lease periods."""
        return int(3000 * self.lease_period_s)

    @property
    def driver_silence_s(self) -> float:
        """A driver not heard for this long gets no more leases (its robot stops)."""
        return 2 * self.heartbeat_s


class Session:
    """One WebSocket connection after its hello.

    Frames to the peer go through a bounded queue drained by a writer task, so that a peer
    that does not read (or a black-holed connection) never holds up the sender; a peer that
    lets the queue fill up is disconnected.
    """

    OUTBOX = 256

    def __init__(self, ws: web.WebSocketResponse, role: p.Role, robot_id: str, name: str,
                 bucket: TokenBucket) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.ws = ws
        self.role = role
        self.robot_id = robot_id
        self.name = name
        self.bucket = bucket
        self.clock = p.ClockOffset()
        self.last_heard = time.monotonic()
        self.moved = False  # a driving command of this session since its last stop
        self.version = p.PROTOCOL_VERSION  # the protocol version its hello named
        self._outbox: asyncio.Queue[str] = asyncio.Queue(self.OUTBOX)
        self._tasks = [asyncio.create_task(self._write())]

    @property
    def closed(self) -> bool:
        return self.ws.closed

    def post(self, message: p.Message) -> None:
        """Queue ``message`` for the peer (never waits)."""
        if not self.ws.closed:
            self.post_frame(p.dump(message))

    def post_frame(self, frame: str) -> None:
        """Queue an already serialized message for the peer (never waits)."""
        if self.ws.closed:
            return
        try:
            self._outbox.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning('%s %s does not read its messages: closing', self.role.value, self.id)
            self._tasks.append(asyncio.create_task(
                self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b'not reading')))

    async def _write(self) -> None:
        while True:
            frame = await self._outbox.get()
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return  # closing; the reader loop ends the session

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
