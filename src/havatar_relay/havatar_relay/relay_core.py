"""The relay: authenticated WebSocket sessions of users and robots, one driver per robot.

Used by the cloud relay server (robots connect over WebSocket, state in a ``Broker``,
possibly Redis) and by the robot's own local server (the robot is attached in-process).
Frames are validated by ``protocol.parse``; a bad frame, or a broker that cannot be
reached, gets an ``error`` reply, never an exception that ends a connection. A driver that
disconnects releases control and the robot is sent ``stop`` at once; a driver that cannot
be heard any more (its relay died or froze, the network or Redis failed) stops getting
leases, and the robot stops by itself.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Optional

from aiohttp import WSCloseCode, WSMsgType, web

from havatar_common.auth_throttle import AuthThrottle

from . import protocol as p
from .accounts import Accounts
from .brokers import NOT_DRIVER, OFFLINE, Broker, BrokerUnavailable
from .session import Limits, Session, TokenBucket

log = logging.getLogger('havatar_relay')
HELLO_TIMEOUT_S = 5.0
MESSAGE_TYPES_FROM_USERS = {'drive', 'motor_control', 'stop', 'say', 'stop_speaking', 'set_mode',
                            'get_status', 'take_control', 'release_control', 'ping', 'pong'}
MESSAGE_TYPES_FROM_ROBOTS = {'status', 'ack', 'error', 'ping', 'pong'}


Metrics = Callable[[str, str], None]  # (event, label)


class RelayCore:
    """Routes between users and robots; one instance per relay process.

    ``start`` begins the driver leases: every ``lease_period_s`` the instance holding a
    driver's connection renews the driver's control in the broker and tells the robot its
    driver is live. Whatever breaks between the driver and the robot (this instance dies or
    freezes, the network or the broker fails) stops the leases, and the robot stops holding
    the driver's last command within ``lease_ttl_ms``.
    """

    def __init__(self, broker: Broker, accounts: Accounts, instance: str = '',
                 limits: Limits = Limits(), metrics: Metrics = lambda event, label: None) -> None:
        self.broker = broker
        self.accounts = accounts
        self.instance = instance or uuid.uuid4().hex[:8]
        self.limits = limits
        self.metrics = metrics
        self.throttle = AuthThrottle()  # shared with the HTTP endpoints of the same server
        self.client_address: Callable[[web.Request], str] = lambda request: request.remote or ''
        self.users: dict[str, dict[str, Session]] = {}    # robot id -> session id -> session
        self.robots: dict[str, Session] = {}             # robot id -> its connection here
        self.driving: dict[str, Session] = {}            # robot id -> its driver, if connected here
        self.local_robots: dict[str, Callable[[p.Message], Awaitable[None]]] = {}
        # told (user name, text) of every say that reached its robot (speech_api: recent phrases)
        self.on_say: Optional[Callable[[str, str], Awaitable[None]]] = None
        self._leases: Optional[asyncio.Task[None]] = None

    async def start(self) -> None:
        self._leases = asyncio.create_task(self._lease_loop())

    async def close(self) -> None:
        """Stop the leases and close every connection."""
        if self._leases is not None:
            self._leases.cancel()
        for session in [*self.robots.values(), *(s for u in self.users.values() for s in u.values())]:
            await session.ws.close(code=WSCloseCode.GOING_AWAY, message=b'relay shutting down')

    # -- attaching a robot in-process (the robot's own local server)
    async def attach_local_robot(self, robot_id: str, deliver: Callable[[p.Message], Awaitable[None]]) -> None:
        """``deliver`` gets every message for the robot; it must not wait for slow work."""
        self.local_robots[robot_id] = deliver
        await self.broker.robot_online(robot_id, self.instance)
        await self.broker.listen_robot(robot_id, self._robot_envelope(robot_id))

    async def from_robot(self, robot_id: str, message: p.Message, to_session: Optional[str] = None) -> None:
        """A message of a robot for its users (``to_session``: only that one, without its id)."""
        frame = p.dump_with(message, id=None) if to_session else p.dump(message)
        await self.broker.to_users(robot_id, {'to': to_session, 'frame': frame})

    # -- WebSocket endpoint
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        # no permessage-deflate: browsers offer it, and zlib on every small JSON frame costs
        # more CPU than the few bytes it saves
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=p.MAX_MESSAGE_BYTES * 2, compress=False)
        await ws.prepare(request)
        session = await self._hello(ws, self.client_address(request))
        if session is None:
            await ws.close()
            return ws
        self.metrics('connect', session.role.value)
        heartbeat = asyncio.create_task(self._heartbeat(session))
        try:
            await self._read(session)
        finally:
            heartbeat.cancel()
            session.cancel()
            await self._leave(session)
            self.metrics('disconnect', session.role.value)
        return ws

    async def _hello(self, ws: web.WebSocketResponse, client: str) -> Optional[Session]:
        try:  # one deadline for the hello: WebSocket pings in between do not extend it
            frame = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT_S)
        except asyncio.TimeoutError:
            await self._send_error(ws, p.ErrorCode.HELLO_REQUIRED, f'no hello within {HELLO_TIMEOUT_S:.0f} s')
            return None
        if frame.type != WSMsgType.TEXT:
            return None
        token = ''
        try:
            hello = p.parse(frame.data)
            if not isinstance(hello, p.Hello):
                raise p.ProtocolError(p.ErrorCode.HELLO_REQUIRED, 'the first message must be hello')
            token = hello.token
            if hello.v not in p.SUPPORTED_VERSIONS:
                raise p.ProtocolError(p.ErrorCode.UNSUPPORTED_VERSION, f'protocol v{hello.v} is not '
                                      f'supported (v{", v".join(map(str, p.SUPPORTED_VERSIONS))})')
            return await self._admit(ws, hello)
        except p.ProtocolError as exc:
            if exc.code is p.ErrorCode.UNAUTHORIZED:  # a wrong token waits (auth_throttle)
                if await self.throttle.refuse(client, token) > 0:
                    self.metrics('auth_throttled', 'ws')
            await ws.send_str(p.dump(exc.to_message()))
        except BrokerUnavailable as exc:
            log.warning('hello refused: %s', exc)
            await self._send_error(ws, p.ErrorCode.UNAVAILABLE, 'the relay cannot serve now; try again')
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b'shared state unavailable')
        return None

    async def _admit(self, ws: web.WebSocketResponse, hello: p.Hello) -> Session:
        """Authenticate ``hello``, send the welcome, then register the session."""
        robot = hello.robot_id
        if hello.role is p.Role.ROBOT:
            if not self.accounts.robot(robot, hello.token):
                self.metrics('auth_failed', 'robot')
                raise p.ProtocolError(p.ErrorCode.UNAUTHORIZED, 'wrong robot id or token')
            name = robot
            bucket = TokenBucket(self.limits.robot_rate, self.limits.robot_burst)
            await self.broker.robot_online(robot, self.instance)
        else:
            found = self.accounts.user(hello.token, robot)
            if found is None:
                self.metrics('auth_failed', 'user')
                raise p.ProtocolError(p.ErrorCode.UNAUTHORIZED, 'this token may not use this robot')
            name = found
            bucket = TokenBucket(self.limits.user_rate, self.limits.user_burst)
        welcome = dict(robot_online=await self.broker.is_online(robot),
                       driver=await self.broker.driver(robot))
        session = Session(ws, hello.role, robot, name, bucket)
        session.version = hello.v
        # the welcome is queued before the session can receive anything else
        session.post(p.Welcome(session_id=session.id, robot_id=robot, role=hello.role,
                               heartbeat_ms=int(self.limits.heartbeat_s * 1000),
                               server_ts=p.now_ms(), **welcome))
        if hello.role is p.Role.ROBOT:
            old = self.robots.get(robot)
            self.robots[robot] = session
            if old is not None:
                await old.ws.close(message=b'replaced by a new connection')
            await self.broker.listen_robot(robot, self._robot_envelope(robot))
        else:
            first = robot not in self.users
            self.users.setdefault(robot, {})[session.id] = session
            if first:
                await self.broker.listen_users(robot, self._users_envelope(robot))
        return session

    async def _read(self, session: Session) -> None:
        async for frame in session.ws:
            session.last_heard = time.monotonic()
            if frame.type == WSMsgType.ERROR:
                break
            if frame.type != WSMsgType.TEXT:
                session.post(p.Error(code=p.ErrorCode.INVALID, message='text frames only'))
                continue
            if not session.bucket.take() and not self._owed_stop(session, frame.data):
                self.metrics('rate_limited', session.role.value)
                if session.bucket.refused % 50 == 1:
                    session.post(p.Error(code=p.ErrorCode.RATE_LIMITED, message='too many messages; slow down'))
                if session.bucket.refused >= self.limits.abuse_refusals:
                    await session.ws.close(message=b'rate limit abused')
                    break
                continue
            try:
                await self._dispatch(session, p.parse(frame.data))
            except p.ProtocolError as exc:
                self.metrics('error', exc.code.value)
                session.post(exc.to_message())
            except BrokerUnavailable as exc:
                self.metrics('error', p.ErrorCode.UNAVAILABLE.value)
                log.warning('%s', exc)
                session.post(p.Error(code=p.ErrorCode.UNAVAILABLE, message='the relay cannot '
                                     'reach its shared state; try again', ts=p.now_ms()))
            except Exception:  # a bug: answer it, keep the connection
                log.exception('handling a message of %s %s', session.role.value, session.id)
                self.metrics('error', p.ErrorCode.INTERNAL.value)
                session.post(p.Error(code=p.ErrorCode.INTERNAL, message='internal error', ts=p.now_ms()))

    @staticmethod
    def _owed_stop(session: Session, frame: str) -> bool:
        """Whether a frame over the rate limit is a stop that must pass all the same: a stop
        (or the original UI's release) after a command of this session that moved the robot.
        """
        if not session.moved:
            return False
        try:
            message = p.parse(frame)
        except p.ProtocolError:
            return False
        return p.is_stop(message)

    async def _dispatch(self, session: Session, message: p.Message) -> None:
        kind = message.type  # type: ignore[attr-defined]
        self.metrics('message', kind)
        allowed = MESSAGE_TYPES_FROM_ROBOTS if session.role is p.Role.ROBOT else MESSAGE_TYPES_FROM_USERS
        if kind not in allowed:
            raise p.ProtocolError(p.ErrorCode.INVALID, f'{kind} is not accepted from a {session.role.value}',
                                  message.id)
        if isinstance(message, p.Ping):
            session.post(p.Pong(ts=message.ts, peer_ts=p.now_ms()))
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
            await self._take_control(session, message.force)
            return
        if isinstance(message, p.ReleaseControl):
            if await self.broker.release_control(robot, session.id):
                await self._released(session)
            return
        update: dict[str, Any] = {'id': session.id}
        if isinstance(message, (p.Stop, p.Drive, p.MotorControl)):
            session.moved = not p.is_stop(message)
        if isinstance(message, (p.Drive, p.MotorControl)):
            update.update(ts=self._command_time(session, message.ts), origin_ts=message.ts)
        elif message.ts is not None:
            update['ts'] = p.now_ms()
        envelope = {'relay_ts': p.now_ms(), 'frame': p.dump_with(message, **update)}
        # commands need the driver; one broker round trip checks it, the robot's presence, and sends
        must_drive = session.id if isinstance(message, (p.Drive, p.MotorControl, p.SetMode, p.Say)) else None
        outcome, driver = await self.broker.forward(robot, envelope, must_drive)
        if outcome == NOT_DRIVER and driver is None:
            if await self._take_control(session, force=False) == session.id:
                outcome, driver = await self.broker.forward(robot, envelope, must_drive)
        if outcome == NOT_DRIVER:
            raise p.ProtocolError(p.ErrorCode.NOT_DRIVER, 'another user is driving; send '
                                  'take_control with force to take over', message.id)
        if outcome == OFFLINE:
            raise p.ProtocolError(p.ErrorCode.ROBOT_OFFLINE, f'robot {robot} is not connected', message.id)
        if isinstance(message, p.Say) and self.on_say is not None:
            try:
                await self.on_say(session.name, message.text)
            except Exception:  # noqa: BLE001 - the say went through; keeping it is secondary
                log.exception('recording a say of %s failed', session.name)

    @staticmethod
    def _command_time(session: Session, sent: Optional[float]) -> float:
        """When a command counts as sent, in this relay's clock: when it arrived here, or
        earlier if the sender's own stamp (offset-corrected once known) says so; never later.
        """
        received = p.now_ms()
        if sent is None:
            return received
        return max(0.0, min(received, session.clock.to_local(sent)))

    async def talk_refusal(self, robot_id: str, session_id: str, take: bool) -> str:
        """Why user session ``session_id`` may not talk through the robot now ('' = it may).

        The driver talks, as only the driver may ``say``; with ``take``, a session talking
        while nobody drives takes control, as a ``say`` would.
        """
        session = self.users.get(robot_id, {}).get(session_id)
        if session is None or session.closed:
            return 'no live /ws session with this session_id on this robot'
        driver = await self.broker.driver(robot_id)
        if driver is None and take:
            driver = await self._take_control(session, force=False)
        if driver != session.id:
            return 'only the driver may talk; take control first'
        return ''

    async def _take_control(self, session: Session, force: bool) -> Optional[str]:
        driver = await self.broker.take_control(session.robot_id, session.id, force)
        if driver == session.id:
            self.driving[session.robot_id] = session
        await self._control_changed(session.robot_id, driver)
        return driver

    async def _released(self, session: Session) -> None:
        """``session`` gave up control: the robot stops now, not when its lease runs out."""
        if self.driving.get(session.robot_id) is session:
            del self.driving[session.robot_id]
        await self._send_to_robot(session.robot_id, p.Stop(ts=p.now_ms()))
        await self._control_changed(session.robot_id, None)

    def viewer_robots(self) -> dict[str, Callable[[p.Message], None]]:
        """The robots connected here that are told who watches them (protocol v2 and up)."""
        return {robot_id: session.post for robot_id, session in self.robots.items()
                if not session.closed and session.version >= p.VIEWERS_SINCE}

    async def connected_elsewhere(self, robot_id: str) -> bool:
        """The robot is connected to another instance of the relay."""
        try:
            return robot_id not in self.robots and await self.broker.is_online(robot_id)
        except BrokerUnavailable:
            return False

    async def send_to_robot(self, robot_id: str, message: p.Message) -> None:
        """Send ``message`` to the robot, wherever it is connected."""
        await self._send_to_robot(robot_id, message)

    async def _send_to_robot(self, robot_id: str, message: p.Message) -> None:
        await self.broker.to_robot(robot_id, self._robot_envelope_of(message))

    @staticmethod
    def _robot_envelope_of(message: p.Message) -> dict[str, Any]:
        """A message for a robot as the broker carries it: serialized once, here."""
        return {'relay_ts': p.now_ms(), 'frame': p.dump(message)}

    async def _control_changed(self, robot_id: str, driver: Optional[str]) -> None:
        await self.broker.to_users(robot_id, {'to': None, 'control': driver})

    # -- envelopes from the broker
    def _robot_envelope(self, robot_id: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def deliver(envelope: dict[str, Any]) -> None:
            local = self.local_robots.get(robot_id)
            if local is not None:
                message = _message_of(envelope)
                if message is not None:
                    await local(message)
                return
            session = self.robots.get(robot_id)
            if session is not None:
                frame = _frame_of(envelope)
                if frame is None:
                    return
                session.post_frame(frame)
                relay_ts = envelope.get('relay_ts')
                if isinstance(relay_ts, (int, float)):
                    self.metrics('forward_ms', str(p.now_ms() - relay_ts))
        return deliver

    def _users_envelope(self, robot_id: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def deliver(envelope: dict[str, Any]) -> None:
            sessions = self.users.get(robot_id, {})
            if 'control' in envelope:
                driver = envelope['control']
                ours = self.driving.get(robot_id)
                if ours is not None and ours.id != driver:
                    del self.driving[robot_id]  # taken over through another instance
                for s in list(sessions.values()):
                    s.post(p.Control(driver=driver, you=driver == s.id, ts=p.now_ms()))
                return
            frame = _frame_of(envelope)
            if frame is None:
                return
            target = envelope.get('to')
            if target is not None:
                found = sessions.get(target)
                if found is not None:
                    found.post_frame(frame)
                return
            for s in list(sessions.values()):
                s.post_frame(frame)
        return deliver

    # -- liveness
    async def _heartbeat(self, session: Session) -> None:
        interval = self.limits.heartbeat_s
        session.post(p.Ping(ts=p.now_ms()))  # the first clock sample right away
        while not session.closed:
            await asyncio.sleep(interval)
            if time.monotonic() - session.last_heard > 3 * interval:
                log.info('%s %s silent for %.1f s: closing', session.role.value, session.id,
                         time.monotonic() - session.last_heard)
                await session.ws.close(message=b'silent')
                return
            if session.role is p.Role.ROBOT:
                try:  # presence comes back by itself once the broker does
                    await self.broker.robot_online(session.robot_id, self.instance)
                except BrokerUnavailable as exc:
                    log.warning('%s', exc)
            session.post(p.Ping(ts=p.now_ms()))

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.limits.lease_period_s)
            try:
                await self._leases_due()
            except BrokerUnavailable:
                pass  # no lease goes out: the robot stops by itself
            except Exception:
                log.exception('driver leases')

    async def _leases_due(self) -> None:
        """Renew every live driver's control here and send its robot a lease, in one batch."""
        now = time.monotonic()
        due = [(robot, session) for robot, session in list(self.driving.items())
               if not session.closed  # _leave releases it
               and now - session.last_heard <= self.limits.driver_silence_s]
        if not due:
            return
        renewed = await self.broker.leases([
            (robot, session.id, self._robot_envelope_of(p.Lease(
                driver=session.id, ttl_ms=self.limits.lease_ttl_ms, ts=p.now_ms())))
            for robot, session in due])
        for (robot, session), ok in zip(due, renewed):
            if not ok and self.driving.get(robot) is session:
                del self.driving[robot]

    async def _leave(self, session: Session) -> None:
        """Forget a closed session; shared state it cannot clear now lapses by its TTL."""
        robot = session.robot_id
        try:
            if session.role is p.Role.ROBOT:
                if self.robots.get(robot) is session:
                    del self.robots[robot]
                    await self.broker.unlisten_robot(robot)
                    await self.broker.robot_offline(robot)
                    await self.from_robot(robot, p.Status(robot_id=robot, online=False, ts=p.now_ms()))
                return
            sessions = self.users.get(robot, {})
            sessions.pop(session.id, None)
            if not sessions:
                self.users.pop(robot, None)
                await self.broker.unlisten_users(robot)
            if self.driving.get(robot) is session:
                del self.driving[robot]
            if await self.broker.release_control(robot, session.id):
                await self._released(session)
        except BrokerUnavailable as exc:
            log.warning('%s left while %s', session.id, exc)

    @staticmethod
    async def _send_error(ws: web.WebSocketResponse, code: p.ErrorCode, message: str) -> None:
        try:
            await ws.send_str(p.dump(p.Error(code=code, message=message, ts=p.now_ms())))
        except (ConnectionError, RuntimeError):
            pass


def _frame_of(envelope: dict[str, Any]) -> Optional[str]:
    """The frame an envelope carries (``message``: a relay of an older version sent it)."""
    frame = envelope.get('frame')
    if isinstance(frame, str):
        return frame
    message = _message_of(envelope)
    return None if message is None else p.dump(message)


def _message_of(envelope: dict[str, Any]) -> Optional[p.Message]:
    try:
        frame = envelope.get('frame')
        return p.parse(frame if isinstance(frame, str) else json.dumps(envelope['message']))
    except (p.ProtocolError, KeyError, TypeError, ValueError):
        return None
