"""Shared relay state: which robots are online, who drives each, and message routing.

``MemoryBroker`` serves one relay process (and the robot's own local server).
``RedisBroker`` lets several relay instances behind a load balancer share robots, drivers
and routing: presence keys with a TTL refreshed by heartbeats, the driver as a key set
atomically, and one pub/sub channel per robot in each direction.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, Optional

Handler = Callable[[dict[str, Any]], Awaitable[None]]
PRESENCE_TTL_S = 10


class Broker:
    """What the relay core needs from shared state (all methods are coroutines)."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def healthy(self) -> bool: return True
    async def robot_online(self, robot_id: str, instance: str) -> None: raise NotImplementedError
    async def robot_offline(self, robot_id: str) -> None: raise NotImplementedError
    async def is_online(self, robot_id: str) -> bool: raise NotImplementedError
    async def online_robots(self) -> list[str]: raise NotImplementedError
    async def driver(self, robot_id: str) -> Optional[str]: raise NotImplementedError
    async def take_control(self, robot_id: str, session: str, force: bool) -> Optional[str]:
        """Make ``session`` the driver if nobody drives (or ``force``); return the driver."""
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


class MemoryBroker(Broker):
    def __init__(self) -> None:
        self._online: dict[str, str] = {}
        self._drivers: dict[str, str] = {}
        self._robot_handlers: dict[str, Handler] = {}
        self._user_handlers: dict[str, Handler] = {}

    async def robot_online(self, robot_id: str, instance: str) -> None:
        self._online[robot_id] = instance

    async def robot_offline(self, robot_id: str) -> None:
        self._online.pop(robot_id, None)

    async def is_online(self, robot_id: str) -> bool:
        return robot_id in self._online

    async def online_robots(self) -> list[str]:
        return sorted(self._online)

    async def driver(self, robot_id: str) -> Optional[str]:
        return self._drivers.get(robot_id)

    async def take_control(self, robot_id: str, session: str, force: bool) -> Optional[str]:
        if force or robot_id not in self._drivers:
            self._drivers[robot_id] = session
        return self._drivers[robot_id]

    async def release_control(self, robot_id: str, session: str) -> bool:
        if self._drivers.get(robot_id) == session:
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


class RedisBroker(Broker):
    """State in Redis, shared by every relay instance using the same ``prefix``."""

    def __init__(self, url: str, prefix: str = 'havatar') -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(url, decode_responses=True, socket_timeout=2,
                                        socket_connect_timeout=2, health_check_interval=10)
        self._prefix = prefix
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._handlers: dict[str, Handler] = {}
        self._reader: Optional[asyncio.Task[None]] = None
        self._release = self._redis.register_script(_RELEASE)

    def _key(self, *parts: str) -> str:
        return ':'.join((self._prefix, *parts))

    async def start(self) -> None:
        await self._redis.ping()
        # a subscription keeps the pub/sub connection alive for the reader task
        await self._pubsub.subscribe(self._key('instances'))
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        try:
            await self._pubsub.aclose()
            await self._redis.aclose()
        except (OSError, ConnectionError, RuntimeError) as exc:  # Redis already gone
            logging.getLogger('havatar_relay').warning('closing the Redis connection: %s', exc)

    async def healthy(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:  # any Redis failure means unhealthy; the error is not needed here
            return False

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # connection trouble: redis-py reconnects on the next call
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get('type') != 'message':
                continue
            handler = self._handlers.get(message['channel'])
            if handler is not None:
                try:
                    await handler(json.loads(message['data']))
                except ValueError:
                    continue

    async def robot_online(self, robot_id: str, instance: str) -> None:
        await self._redis.set(self._key('robot', robot_id, 'online'), instance, ex=PRESENCE_TTL_S)

    async def robot_offline(self, robot_id: str) -> None:
        await self._redis.delete(self._key('robot', robot_id, 'online'))

    async def is_online(self, robot_id: str) -> bool:
        return bool(await self._redis.exists(self._key('robot', robot_id, 'online')))

    async def online_robots(self) -> list[str]:
        keys = [k async for k in self._redis.scan_iter(self._key('robot', '*', 'online'))]
        return sorted(k.split(':')[-2] for k in keys)

    async def driver(self, robot_id: str) -> Optional[str]:
        return await self._redis.get(self._key('robot', robot_id, 'driver'))

    async def take_control(self, robot_id: str, session: str, force: bool) -> Optional[str]:
        key = self._key('robot', robot_id, 'driver')
        if force:
            await self._redis.set(key, session)
        else:
            await self._redis.set(key, session, nx=True)
        return await self._redis.get(key)

    async def release_control(self, robot_id: str, session: str) -> bool:
        return bool(await self._release(keys=[self._key('robot', robot_id, 'driver')], args=[session]))

    async def to_robot(self, robot_id: str, envelope: dict[str, Any]) -> None:
        await self._redis.publish(self._key('robot', robot_id, 'to_robot'), json.dumps(envelope))

    async def to_users(self, robot_id: str, envelope: dict[str, Any]) -> None:
        await self._redis.publish(self._key('robot', robot_id, 'to_users'), json.dumps(envelope))

    async def _listen(self, channel: str, handler: Handler) -> None:
        self._handlers[channel] = handler
        await self._pubsub.subscribe(channel)

    async def _unlisten(self, channel: str) -> None:
        self._handlers.pop(channel, None)
        await self._pubsub.unsubscribe(channel)

    async def listen_robot(self, robot_id: str, handler: Handler) -> None:
        await self._listen(self._key('robot', robot_id, 'to_robot'), handler)

    async def unlisten_robot(self, robot_id: str) -> None:
        await self._unlisten(self._key('robot', robot_id, 'to_robot'))

    async def listen_users(self, robot_id: str, handler: Handler) -> None:
        await self._listen(self._key('robot', robot_id, 'to_users'), handler)

    async def unlisten_users(self, robot_id: str) -> None:
        await self._unlisten(self._key('robot', robot_id, 'to_users'))
