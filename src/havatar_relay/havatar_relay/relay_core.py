"""The relay: authenticated WebSocket sessions of users and robots, one driver per robot.

Used by the cloud relay server (robots connect over WebSocket, state in a ``Broker``,
possibly Redis) and by the robot's own local server (the robot is attached in-process).
Frames are validated by ``protocol.parse``; a bad frame gets an ``error`` reply, never an
exception. A driver that disconnects or falls silent releases control and the robot is
sent ``stop`` at once.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional

from aiohttp import WSMsgType, web

from . import protocol as p
from .brokers import Broker

log = logging.getLogger('havatar_relay')
HELLO_TIMEOUT_S = 5.0
MESSAGE_TYPES_FROM_USERS = {'drive', 'motor_control', 'stop', 'say', 'set_mode', 'get_status',
                            'take_control', 'release_control', 'ping', 'pong'}
MESSAGE_TYPES_FROM_ROBOTS = {'status', 'ack', 'error', 'ping', 'pong'}
FORWARDED_TO_ROBOT = {'drive', 'motor_control', 'stop', 'say', 'set_mode', 'get_status'}


def token_matches(given: str, expected: str) -> bool:
    """Constant-time token check; ``expected`` may be ``sha256:<hex>``."""
    if expected.startswith('sha256:'):
        digest = hashlib.sha256(given.encode()).hexdigest()
        return hmac.compare_digest(digest, expected[7:].lower())
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Accounts:
    """Who may connect: robots by token, users by token with the robots they may use."""

    robots: dict[str, str] = field(default_factory=dict)              # robot id -> token
    users: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # name -> (token, robots or ['*'])

    def robot(self, robot_id: str, token: str) -> bool:
        expected = self.robots.get(robot_id)
        return expected is not None and token_matches(token, expected)

    def known_user(self, token: str) -> Optional[str]:
        return next((name for name, (expected, _) in self.users.items()
                     if token_matches(token, expected)), None)

    def user(self, token: str, robot_id: str) -> Optional[str]:
        """The user's name if ``token`` is theirs and they may use ``robot_id``."""
        for name, (expected, robots) in self.users.items():
            if token_matches(token, expected):
                return name if ('*' in robots or robot_id in robots) else None
        return None


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


class Session:
    """One WebSocket connection after its hello."""

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

    async def send(self, message: p.Message) -> None:
        if not self.ws.closed:
            try:
                await self.ws.send_str(p.dump(message))
            except (ConnectionError, RuntimeError):
                pass  # closing; the reader loop ends the session


Metrics = Callable[[str, str], None]  # (event, label)


class RelayCore:
    """Routes between users and robots; one instance per relay process."""

    def __init__(self, broker: Broker, accounts: Accounts, instance: str = '',
                 limits: Limits = Limits(), metrics: Metrics = lambda event, label: None) -> None:
        self.broker = broker
        self.accounts = accounts
        self.instance = instance or uuid.uuid4().hex[:8]
        self.limits = limits
        self.metrics = metrics
        self.users: dict[str, dict[str, Session]] = {}    # robot id -> session id -> session
        self.robots: dict[str, Session] = {}             # robot id -> its connection here
        self.local_robots: dict[str, Callable[[p.Message], Awaitable[None]]] = {}

    # -- attaching a robot in-process (the robot's own local server)
    async def attach_local_robot(self, robot_id: str, deliver: Callable[[p.Message], Awaitable[None]]) -> None:
        self.local_robots[robot_id] = deliver
        await self.broker.robot_online(robot_id, self.instance)
        await self.broker.listen_robot(robot_id, self._robot_envelope(robot_id))

    async def from_robot(self, robot_id: str, message: p.Message, to_session: Optional[str] = None) -> None:
        """A message of a robot for its users (``to_session``: only that one)."""
        await self.broker.to_users(robot_id, {'to': to_session, 'message': message.model_dump(mode='json', exclude_none=True)})

    # -- WebSocket endpoint
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=p.MAX_MESSAGE_BYTES * 2)
        await ws.prepare(request)
        session = await self._hello(ws)
        if session is None:
            await ws.close()
            return ws
        self.metrics('connect', session.role.value)
        heartbeat = asyncio.create_task(self._heartbeat(session))
        try:
            await self._read(session)
        finally:
            heartbeat.cancel()
            await self._leave(session)
            self.metrics('disconnect', session.role.value)
        return ws

    async def _hello(self, ws: web.WebSocketResponse) -> Optional[Session]:
        try:
            frame = await ws.receive(timeout=HELLO_TIMEOUT_S)
        except asyncio.TimeoutError:
            await self._send_error(ws, p.ErrorCode.HELLO_REQUIRED, 'no hello within 5 s')
            return None
        if frame.type != WSMsgType.TEXT:
            return None
        try:
            hello = p.parse(frame.data)
        except p.ProtocolError as exc:
            await ws.send_str(p.dump(exc.to_message()))
            return None
        if not isinstance(hello, p.Hello):
            await self._send_error(ws, p.ErrorCode.HELLO_REQUIRED, 'the first message must be hello')
            return None
        if hello.v != p.PROTOCOL_VERSION:
            await self._send_error(ws, p.ErrorCode.UNSUPPORTED_VERSION,
                                   f'protocol v{hello.v} is not supported (v{p.PROTOCOL_VERSION})')
            return None
        if hello.role is p.Role.ROBOT:
            if not self.accounts.robot(hello.robot_id, hello.token):
                self.metrics('auth_failed', 'robot')
                await self._send_error(ws, p.ErrorCode.UNAUTHORIZED, 'wrong robot id or token')
                return None
            session = Session(ws, hello.role, hello.robot_id, hello.robot_id,
                              TokenBucket(self.limits.robot_rate, self.limits.robot_burst))
            old = self.robots.get(hello.robot_id)
            if old is not None:
                await old.ws.close(message=b'replaced by a new connection')
            self.robots[hello.robot_id] = session
            await self.broker.robot_online(hello.robot_id, self.instance)
            await self.broker.listen_robot(hello.robot_id, self._robot_envelope(hello.robot_id))
        else:
            name = self.accounts.user(hello.token, hello.robot_id)
            if name is None:
                self.metrics('auth_failed', 'user')
                await self._send_error(ws, p.ErrorCode.UNAUTHORIZED,
                                       'this token may not use this robot')
                return None
            session = Session(ws, hello.role, hello.robot_id, name,
                              TokenBucket(self.limits.user_rate, self.limits.user_burst))
            first = hello.robot_id not in self.users
            self.users.setdefault(hello.robot_id, {})[session.id] = session
            if first:
                await self.broker.listen_users(hello.robot_id, self._users_envelope(hello.robot_id))
        online = await self.broker.is_online(hello.robot_id)
        await session.send(p.Welcome(session_id=session.id, robot_id=hello.robot_id,
                                     role=hello.role, driver=await self.broker.driver(hello.robot_id),
                                     robot_online=online,
                                     heartbeat_ms=int(self.limits.heartbeat_s * 1000),
                                     server_ts=p.now_ms()))
        return session

    async def _read(self, session: Session) -> None:
        async for frame in session.ws:
            session.last_heard = time.monotonic()
            if frame.type == WSMsgType.ERROR:
                break
            if frame.type != WSMsgType.TEXT:
                await session.send(p.Error(code=p.ErrorCode.INVALID, message='text frames only'))
                continue
            if not session.bucket.take():
                self.metrics('rate_limited', session.role.value)
                if session.bucket.refused % 50 == 1:
                    await session.send(p.Error(code=p.ErrorCode.RATE_LIMITED,
                                               message='too many messages; slow down'))
                if session.bucket.refused >= self.limits.abuse_refusals:
                    await session.ws.close(message=b'rate limit abused')
                    break
                continue
            try:
                message = p.parse(frame.data)
                await self._dispatch(session, message)
            except p.ProtocolError as exc:
                self.metrics('error', exc.code.value)
                await session.send(exc.to_message())

    async def _dispatch(self, session: Session, message: p.Message) -> None:
        kind = message.type  # type: ignore[attr-defined]
        self.metrics('message', kind)
        allowed = MESSAGE_TYPES_FROM_ROBOTS if session.role is p.Role.ROBOT else MESSAGE_TYPES_FROM_USERS
        if kind not in allowed:
            raise p.ProtocolError(p.ErrorCode.INVALID, f'{kind} is not accepted from a {session.role.value}')
        if isinstance(message, p.Ping):
            await session.send(p.Pong(ts=message.ts, peer_ts=p.now_ms()))
            return
        if isinstance(message, p.Pong):
            if message.ts is not None:
                session.clock.add(message.ts, message.peer_ts, p.now_ms())
            return
        if session.role is p.Role.ROBOT:
            target = message.id if isinstance(message, (p.Ack, p.Error)) else None
            await self.from_robot(session.robot_id, message, to_session=target)
            return
        await self._from_user(session, message)

    async def _from_user(self, session: Session, message: p.Message) -> None:
        robot = session.robot_id
        if isinstance(message, p.TakeControl):
            driver = await self.broker.take_control(robot, session.id, message.force)
            await self._control_changed(robot, driver)
            return
        if isinstance(message, p.ReleaseControl):
            if await self.broker.release_control(robot, session.id):
                await self._send_to_robot(robot, p.Stop(ts=p.now_ms()))
                await self._control_changed(robot, None)
            return
        if isinstance(message, (p.Drive, p.MotorControl, p.Stop, p.SetMode, p.Say)):
            driver = await self.broker.driver(robot)
            if driver is None and not isinstance(message, p.Stop):
                driver = await self.broker.take_control(robot, session.id, force=False)
                await self._control_changed(robot, driver)
            if driver != session.id and not isinstance(message, p.Stop):
                raise p.ProtocolError(p.ErrorCode.NOT_DRIVER, 'another user is driving; send '
                                      'take_control with force to take over', message.id)
        if not await self.broker.is_online(robot):
            raise p.ProtocolError(p.ErrorCode.ROBOT_OFFLINE, f'robot {robot} is not connected', message.id)
        update: dict[str, Any] = {'id': session.id}
        if message.ts is not None:
            # into this relay's clock, so the robot can judge the command's true age
            update['ts'] = max(0.0, session.clock.to_local(message.ts))
        await self._send_to_robot(robot, message.model_copy(update=update))

    async def _send_to_robot(self, robot_id: str, message: p.Message) -> None:
        await self.broker.to_robot(robot_id, {'relay_ts': p.now_ms(),
                                              'message': message.model_dump(mode='json', exclude_none=True)})

    async def _control_changed(self, robot_id: str, driver: Optional[str]) -> None:
        await self.broker.to_users(robot_id, {'to': None, 'control': driver})

    # -- envelopes from the broker
    def _robot_envelope(self, robot_id: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def deliver(envelope: dict[str, Any]) -> None:
            try:
                message = p.parse(json.dumps(envelope['message']))
            except (p.ProtocolError, KeyError):
                return
            local = self.local_robots.get(robot_id)
            if local is not None:
                await local(message)
                return
            session = self.robots.get(robot_id)
            if session is not None:
                relay_ts = envelope.get('relay_ts')
                await session.send(message)
                if relay_ts is not None:
                    self.metrics('forward_ms', str(p.now_ms() - relay_ts))
        return deliver

    def _users_envelope(self, robot_id: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def deliver(envelope: dict[str, Any]) -> None:
            sessions = self.users.get(robot_id, {})
            if 'control' in envelope:
                driver = envelope['control']
                for s in list(sessions.values()):
                    await s.send(p.Control(driver=driver, you=driver == s.id, ts=p.now_ms()))
                return
            try:
                message = p.parse(json.dumps(envelope['message']))
            except (p.ProtocolError, KeyError):
                return
            target = envelope.get('to')
            for s in list(sessions.values()):
                if target is None or s.id == target:
                    await s.send(message.model_copy(update={'id': None}) if target else message)
        return deliver

    # -- liveness
    async def _heartbeat(self, session: Session) -> None:
        interval = self.limits.heartbeat_s
        while not session.ws.closed:
            await asyncio.sleep(interval)
            if time.monotonic() - session.last_heard > 3 * interval:
                log.info('%s %s silent for %.1f s: closing', session.role.value, session.id,
                         time.monotonic() - session.last_heard)
                await session.ws.close(message=b'silent')
                return
            if session.role is p.Role.ROBOT:
                await self.broker.robot_online(session.robot_id, self.instance)
            await session.send(p.Ping(ts=p.now_ms()))

    async def _leave(self, session: Session) -> None:
        robot = session.robot_id
        if session.role is p.Role.ROBOT:
            if self.robots.get(robot) is session:
                del self.robots[robot]
                await self.broker.robot_offline(robot)
                await self.broker.unlisten_robot(robot)
                await self.from_robot(robot, p.Status(robot_id=robot, online=False, ts=p.now_ms()))
            return
        sessions = self.users.get(robot, {})
        sessions.pop(session.id, None)
        if await self.broker.release_control(robot, session.id):
            # the driver is gone: the robot stops now, not when its deadman fires
            await self._send_to_robot(robot, p.Stop(ts=p.now_ms()))
            await self._control_changed(robot, None)
        if not sessions:
            self.users.pop(robot, None)
            await self.broker.unlisten_users(robot)

    @staticmethod
    async def _send_error(ws: web.WebSocketResponse, code: p.ErrorCode, message: str) -> None:
        await ws.send_str(p.dump(p.Error(code=code, message=message, ts=p.now_ms())))
