"""Shared relay state: which robots are online, who drives each, and message routing.

``MemoryBroker`` serves one relay process (and the robot's own local server).
``RedisBroker`` lets several relay instances behind a load balancer share robots, drivers
and routing: presence keys with a TTL refreshed by heartbeats, control of a robot as a
lease (a key with a TTL that the holding instance renews, so a dead holder's control
lapses by itself), and one pub/sub channel per robot in each direction.

Every failure to reach the shared state is raised as ``BrokerUnavailable``; callers answer
it with an error and go on. ``RedisBroker`` survives a Redis restart by itself: its reader
re-subscribes every channel once Redis answers again, and the holders' next renewals and
presence heartbeats write their state back.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

try:  # optional: a faster JSON codec for the envelopes on Redis
    import orjson

    def _dumps(obj: Any) -> str:
        return orjson.dumps(obj).decode()
    _loads: Callable[[Any], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _dumps = json.dumps
    _loads = json.loads

Handler = Callable[[dict[str, Any]], Awaitable[None]]
# what ``Broker.forward`` did with a message for a robot
SENT, NOT_DRIVER, OFFLINE = 'sent', 'not_driver', 'offline'
PRESENCE_TTL_S = 10
CONTROL_TTL_S = 3.0  # a driver whose relay stops renewing loses control after this
log = logging.getLogger('havatar_relay')


class BrokerUnavailable(Exception):
    """The shared state cannot be reached now; the operation did not happen."""


class Broker:
    """What the relay core needs from shared state (all methods are coroutines)."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def healthy(self) -> bool: return True
    async def robot_online(self, robot_id: str, instance: str) -> None: raise NotImplementedError
    async def robot_offline(self, robot_id: str) -> None: raise NotImplementedError
    async def is_online(self, robot_id: str) -> bool: raise NotImplementedError
    async def driver(self, robot_id: str) -> Optional[str]: raise NotImplementedError
    async def take_control(self, robot_id: str, session: str, force: bool) -> Optional[str]:
        """Make ``session`` the driver if nobody drives (or ``force``); return the driver."""
        raise NotImplementedError
    async def renew_control(self, robot_id: str, session: str) -> bool:
        """Extend ``session``'s control (taking it back if it lapsed); False if another drives."""
        raise NotImplementedError
    async def release_control(self, robot_id: str, session: str) -> bool:
        """Release if ``session`` drives; True when it did."""
        raise NotImplementedError
    async def to_robot(self, robot_id: str, envelope: dict[str, Any]) -> None: raise NotImplementedError
    async def to_users(self, robot_id: str, envelope: dict[str, Any]) -> None: raise NotImplementedError
    async def listen_robot(self, robot_id: str, handler: Handler) -> None: raise NotImplementedError
    async def unlisten_robot(self, robot_id: str) -> None: raise NotImplementedError
    async def listen_users(self, robot_id: str, handler: Handler) -> None: raise NotImplementedError
    async def unlisten_users(self, robot_id: str) -> None: raise NotImplementedError

    async def forward(self, robot_id: str, envelope: dict[str, Any],
                      driver: Optional[str] = None) -> tuple[str, Optional[str]]:
        """Send ``envelope`` to the robot if it is online and (when ``driver`` is given) that
        session drives it; return what happened (``SENT``, ``NOT_DRIVER``, ``OFFLINE``) and the
        driver found (None when ``driver`` was not asked for). One round trip where it can be.
        """
        current = None
        if driver is not None:
            current = await self.driver(robot_id)
            if current != driver:
                return NOT_DRIVER, current
        if not await self.is_online(robot_id):
            return OFFLINE, current
        await self.to_robot(robot_id, envelope)
        return SENT, current

    async def leases(self, grants: list[tuple[str, str, dict[str, Any]]]) -> list[bool]:
        """For each ``(robot, session, envelope)``: renew the session's control and, when
        renewed, send the envelope (its lease) to the robot. Returns the renewals.
        """
        renewed = []
        for robot_id, session, envelope in grants:
            ok = await self.renew_control(robot_id, session)
            if ok:
                await self.to_robot(robot_id, envelope)
            renewed.append(ok)
        return renewed


class MemoryBroker(Broker):
    def __init__(self, control_ttl_s: float = CONTROL_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``clock``: monotonic seconds, for how long control lasts without a renewal."""
        self._online: dict[str, str] = {}
        self._drivers: dict[str, tuple[str, float]] = {}  # robot -> (session, lease end)
        self._control_ttl = control_ttl_s
        self._clock = clock
        self._robot_handlers: dict[str, Handler] = {}
        self._user_handlers: dict[str, Handler] = {}

    async def robot_online(self, robot_id: str, instance: str) -> None:
        self._online[robot_id] = instance

    async def robot_offline(self, robot_id: str) -> None:
        self._online.pop(robot_id, None)

    async def is_online(self, robot_id: str) -> bool:
        return robot_id in self._online

    async def driver(self, robot_id: str) -> Optional[str]:
        entry = self._drivers.get(robot_id)
        if entry is None or entry[1] < self._clock():
            return None
        return entry[0]

    async def take_control(self, robot_id: str, session: str, force: bool) -> Optional[str]:
        if force or await self.driver(robot_id) is None:
            self._drivers[robot_id] = (session, self._clock() + self._control_ttl)
        return await self.driver(robot_id)

    async def renew_control(self, robot_id: str, session: str) -> bool:
        if await self.driver(robot_id) not in (None, session):
            return False
        self._drivers[robot_id] = (session, self._clock() + self._control_ttl)
        return True

    async def release_control(self, robot_id: str, session: str) -> bool:
        if await self.driver(robot_id) == session:
            del self._drivers[robot_id]
            return True
        return False

    async def to_robot(self, robot_id: str, envelope: dict[str, Any]) -> None:
        handler = self._robot_handlers.get(robot_id)
        if handler is not None:
            await handler(envelope)

    async def to_users(self, robot_id: str, envelope: dict[str, Any]) -> None:
        handler = self._user_handlers.get(robot_id)
        if handler is not None:
            await handler(envelope)

    async def listen_robot(self, robot_id: str, handler: Handler) -> None:
        self._robot_handlers[robot_id] = handler

    async def unlisten_robot(self, robot_id: str) -> None:
        self._robot_handlers.pop(robot_id, None)

    async def listen_users(self, robot_id: str, handler: Handler) -> None:
        self._user_handlers[robot_id] = handler

    async def unlisten_users(self, robot_id: str) -> None:
        self._user_handlers.pop(robot_id, None)


# KEYS[1] driver key, ARGV[1] session: delete only if it is ours
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
# KEYS[1] driver key, ARGV[1] session, ARGV[2] ttl ms: extend ours, or take it back if it lapsed
_RENEW = """local v = redis.call('get', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0"""
# KEYS[1] driver key, KEYS[2] online key; ARGV[1] session that must drive ('': none),
# ARGV[2] channel, ARGV[3] payload: publish unless not the driver or offline
_FORWARD = """local d = redis.call('get', KEYS[1])
if ARGV[1] ~= '' and d ~= ARGV[1] then return {0, d or ''} end
if redis.call('exists', KEYS[2]) == 0 then return {2, d or ''} end
redis.call('publish', ARGV[2], ARGV[3])
return {1, d or ''}"""
# KEYS[1] driver key; ARGV[1] session, ARGV[2] ttl ms, ARGV[3] channel, ARGV[4] payload:
# _RENEW, then publish the lease when renewed
_LEASE = """local v = redis.call('get', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('publish', ARGV[3], ARGV[4])
  return 1
end
return 0"""


class _Pipeliner:
    """Commands issued while a pipeline is out (or in the same event-loop turn) go to Redis
    together as the next pipeline: one write and one read for many messages under load,
    one round trip as before when idle.
    """

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._task: Optional[asyncio.Task[None]] = None

    async def __call__(self, *command: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((command, future))
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for command, _ in batch:
                            pipe.execute_command(*command)
                        results = await pipe.execute(raise_on_error=False)
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # the caller's guard turns it into BrokerUnavailable
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._task = None


class RedisBroker(Broker):
    """State in Redis, shared by every relay instance using the same ``prefix``."""

    RETRY_S = 0.5  # between attempts to get the subscriptions back after Redis failed

    def __init__(self, url: str, prefix: str = 'havatar', control_ttl_s: float = CONTROL_TTL_S) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        self._errors = (RedisError, OSError, asyncio.TimeoutError)
        self._redis = aioredis.from_url(url, decode_responses=True, socket_timeout=2,
                                        socket_connect_timeout=2, health_check_interval=10)
        self._prefix = prefix
        self._control_ttl_ms = int(control_ttl_s * 1000)
        self._pubsub: Any = None
        self._handlers: dict[str, Handler] = {}
        self._reader: Optional[asyncio.Task[None]] = None
        self._release = self._redis.register_script(_RELEASE)
        self._renew = self._redis.register_script(_RENEW)
        self._pipeline = _Pipeliner(self._redis)
        self._subscribed = False  # the reader's subscriptions are in place

    def _key(self, *parts: str) -> str:
        return ':'.join((self._prefix, *parts))

    @contextlib.asynccontextmanager
    async def _guard(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except self._errors as exc:
            raise BrokerUnavailable(f'Redis unavailable ({what}): {exc}') from None

    async def start(self) -> None:
        """Start the reader; it connects (and reconnects) by itself, so Redis may come later."""
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        with contextlib.suppress(*self._errors, RuntimeError):
            if self._pubsub is not None:
                await self._pubsub.aclose()
        with contextlib.suppress(*self._errors, RuntimeError):
            await self._redis.aclose()

    async def healthy(self) -> bool:
        if not self._subscribed:
            return False
        try:
            return bool(await self._redis.ping())
        except self._errors:
            return False

    async def _subscribe_all(self) -> None:
        """A fresh pub/sub connection subscribed to every channel a handler listens on."""
        old, self._pubsub = self._pubsub, self._redis.pubsub(ignore_subscribe_messages=True)
        if old is not None:
            with contextlib.suppress(*self._errors, RuntimeError):
                await old.aclose()
        # the instances channel keeps the connection subscribed when no robot is here
        await self._pubsub.subscribe(self._key('instances'), *self._handlers)
        self._subscribed = True

    async def _read(self) -> None:
        while True:
            try:
                if not self._subscribed:
                    await self._subscribe_all()
                    log.info('Redis subscriptions in place (%d channels)', len(self._handlers) + 1)
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of the connection: start over on a new one
                if self._subscribed:
                    log.warning('Redis subscription lost (%s); retrying', exc)
                self._subscribed = False
                await asyncio.sleep(self.RETRY_S)
                continue
            if message is None or message.get('type') != 'message':
                continue
            handler = self._handlers.get(message['channel'])
            if handler is None:
                continue
            try:
                await handler(_loads(message['data']))
            except Exception:  # a handler's failure must never stop the reader
                log.exception('handling a message on %s', message['channel'])

    async def robot_online(self, robot_id: str, instance: str) -> None:
        async with self._guard('presence'):
            await self._redis.set(self._key('robot', robot_id, 'online'), instance, ex=PRESENCE_TTL_S)

    async def robot_offline(self, robot_id: str) -> None:
        async with self._guard('presence'):
            await self._redis.delete(self._key('robot', robot_id, 'online'))

    async def is_online(self, robot_id: str) -> bool:
        async with self._guard('presence'):
            return bool(await self._redis.exists(self._key('robot', robot_id, 'online')))

    async def driver(self, robot_id: str) -> Optional[str]:
        async with self._guard('control'):
            return await self._redis.get(self._key('robot', robot_id, 'driver'))

    async def take_control(self, robot_id: str, session: str, force: bool) -> Optional[str]:
        key = self._key('robot', robot_id, 'driver')
        async with self._guard('control'):
            await self._redis.set(key, session, px=self._control_ttl_ms, nx=not force)
            return await self._redis.get(key)

    async def renew_control(self, robot_id: str, session: str) -> bool:
        async with self._guard('control'):
            return bool(await self._renew(keys=[self._key('robot', robot_id, 'driver')],
                                          args=[session, self._control_ttl_ms]))

    async def release_control(self, robot_id: str, session: str) -> bool:
        async with self._guard('control'):
            return bool(await self._release(keys=[self._key('robot', robot_id, 'driver')], args=[session]))

    async def to_robot(self, robot_id: str, envelope: dict[str, Any]) -> None:
        async with self._guard('publish'):
            await self._pipeline('PUBLISH', self._key('robot', robot_id, 'to_robot'), _dumps(envelope))

    async def to_users(self, robot_id: str, envelope: dict[str, Any]) -> None:
        async with self._guard('publish'):
            await self._pipeline('PUBLISH', self._key('robot', robot_id, 'to_users'), _dumps(envelope))

    async def forward(self, robot_id: str, envelope: dict[str, Any],
                      driver: Optional[str] = None) -> tuple[str, Optional[str]]:
        keys = [self._key('robot', robot_id, 'driver'), self._key('robot', robot_id, 'online')]
        async with self._guard('publish'):
            code, current = await self._pipeline('EVAL', _FORWARD, 2, *keys, driver or '',
                                                 self._key('robot', robot_id, 'to_robot'), _dumps(envelope))
        outcome = {1: SENT, 0: NOT_DRIVER}.get(int(code), OFFLINE)
        return outcome, (current or None) if driver is not None else None

    async def leases(self, grants: list[tuple[str, str, dict[str, Any]]]) -> list[bool]:
        if not grants:
            return []
        async with self._guard('control'):
            renewed = await asyncio.gather(*(
                self._pipeline('EVAL', _LEASE, 1, self._key('robot', robot_id, 'driver'), session,
                               self._control_ttl_ms, self._key('robot', robot_id, 'to_robot'), _dumps(envelope))
                for robot_id, session, envelope in grants))
        return [bool(r) for r in renewed]

    async def _listen(self, channel: str, handler: Handler) -> None:
        self._handlers[channel] = handler
        if self._subscribed:
            try:
                await self._pubsub.subscribe(channel)
            except self._errors:
                self._subscribed = False  # the reader subscribes every handler's channel again

    async def _unlisten(self, channel: str) -> None:
        if self._handlers.pop(channel, None) is not None and self._subscribed:
            with contextlib.suppress(*self._errors):  # resubscribing leaves it out anyway
                await self._pubsub.unsubscribe(channel)

    async def listen_robot(self, robot_id: str, handler: Handler) -> None:
        await self._listen(self._key('robot', robot_id, 'to_robot'), handler)

    async def unlisten_robot(self, robot_id: str) -> None:
        await self._unlisten(self._key('robot', robot_id, 'to_robot'))

    async def listen_users(self, robot_id: str, handler: Handler) -> None:
        await self._listen(self._key('robot', robot_id, 'to_users'), handler)

    async def unlisten_users(self, robot_id: str) -> None:
        await self._unlisten(self._key('robot', robot_id, 'to_users'))
