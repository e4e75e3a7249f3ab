"""The brokers' contract: presence, control as a lease (expiry, renewal, take-over), routing;
MemoryBroker on a clock of the test's, RedisBroker against a real redis-server.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import pytest

from havatar_relay.brokers import NOT_DRIVER, OFFLINE, SENT, Broker, BrokerUnavailable, MemoryBroker, RedisBroker
from havatar_testing import free_port


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def control_contract(broker: Broker, lapse: Callable[[], Awaitable[None]]) -> None:
    """What the relay core relies on; ``lapse()`` lets a control lease run out."""
    assert await broker.driver('r1') is None
    assert await broker.take_control('r1', 'alice', force=False) == 'alice'
    assert await broker.take_control('r1', 'bob', force=False) == 'alice'  # held: no take-over
    assert not await broker.renew_control('r1', 'bob')
    assert not await broker.release_control('r1', 'bob')  # only the holder releases
    assert await broker.renew_control('r1', 'alice')
    assert await broker.take_control('r1', 'bob', force=True) == 'bob'  # force takes over
    assert not await broker.renew_control('r1', 'alice')
    await lapse()  # bob's relay stopped renewing
    assert await broker.driver('r1') is None
    assert await broker.take_control('r1', 'alice', force=False) == 'alice'
    await lapse()
    assert await broker.renew_control('r1', 'alice')  # a lapsed lease is taken back on renewal
    assert await broker.driver('r1') == 'alice'
    assert await broker.release_control('r1', 'alice')
    assert await broker.driver('r1') is None and not await broker.release_control('r1', 'alice')
    assert await broker.driver('r2') is None  # robots are separate


async def presence_contract(broker: Broker) -> None:
    assert not await broker.is_online('r1')
    await broker.robot_online('r1', 'instance-a')
    assert await broker.is_online('r1') and not await broker.is_online('r2')
    await broker.robot_offline('r1')
    assert not await broker.is_online('r1')


async def forward_contract(sender: Broker, receiver: Broker) -> None:
    """One round trip for a user's message: driver and presence checked, then sent; and the
    lease batch: renewed control gets its lease sent, lost control does not.
    """
    robot = Inbox()
    await receiver.listen_robot('f1', robot)
    await until(receiver.healthy, 'the robot channel subscribed')
    assert await sender.forward('f1', {'frame': 'x'}, 'alice') == (NOT_DRIVER, None)  # nobody drives
    assert await sender.forward('f1', {'frame': 'x'}) == (OFFLINE, None)
    await sender.take_control('f1', 'alice', force=False)
    assert await sender.forward('f1', {'frame': 'x'}, 'bob') == (NOT_DRIVER, 'alice')
    assert await sender.forward('f1', {'frame': 'x'}, 'alice') == (OFFLINE, 'alice')
    await sender.robot_online('f1', 'instance-b')
    assert await sender.forward('f1', {'frame': 'drive'}, 'alice') == (SENT, 'alice')
    assert await sender.forward('f1', {'frame': 'stop'}) == (SENT, None)  # no driver needed
    assert [(await robot.next())['frame'] for _ in range(2)] == ['drive', 'stop']
    await sender.take_control('f2', 'carol', force=False)
    assert await sender.leases([('f1', 'alice', {'frame': 'lease'}), ('f2', 'dave', {'frame': 'no'})]) == [True, False]
    assert (await robot.next())['frame'] == 'lease'
    assert await sender.driver('f2') == 'carol'
    await sender.robot_offline('f1')
    await receiver.unlisten_robot('f1')


class Inbox:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def __call__(self, envelope: dict[str, Any]) -> None:
        await self.queue.put(envelope)

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.queue.get(), timeout)


def test_memory_broker_control_lapses_without_renewal_and_renews():
    now = [1000.0]
    broker = MemoryBroker(control_ttl_s=3.0, clock=lambda: now[0])

    async def lapse() -> None:
        now[0] += 3.01

    async def scenario() -> None:
        await control_contract(broker, lapse)
        assert await broker.take_control('r1', 'alice', force=False) == 'alice'
        for _ in range(10):  # renewed within its TTL, it never lapses
            now[0] += 2.9
            assert await broker.renew_control('r1', 'alice')
        now[0] += 2.9
        assert await broker.driver('r1') == 'alice'
        await presence_contract(broker)
        await forward_contract(broker, broker)
    run(scenario())


def test_memory_broker_routes_each_robots_messages_to_its_listener():
    async def scenario() -> None:
        broker = MemoryBroker()
        robot, users = Inbox(), Inbox()
        await broker.listen_robot('r1', robot)
        await broker.listen_users('r1', users)
        await broker.to_robot('r1', {'message': {'type': 'stop'}})
        await broker.to_users('r1', {'to': None, 'control': 'alice'})
        await broker.to_robot('r2', {'message': {'type': 'stop'}})  # nobody listens: dropped
        assert (await robot.next())['message'] == {'type': 'stop'}
        assert (await users.next())['control'] == 'alice'
        await broker.unlisten_robot('r1')
        await broker.to_robot('r1', {'message': {'type': 'stop'}})
        assert robot.queue.empty()
    run(scenario())


def test_redis_broker_shares_presence_control_and_messages(redis_url):
    async def scenario() -> None:
        a = RedisBroker(redis_url, prefix='t', control_ttl_s=0.5)
        b = RedisBroker(redis_url, prefix='t', control_ttl_s=0.5)  # another relay instance
        for broker in (a, b):
            await broker.start()
        try:
            await until(a.healthy, 'broker a subscribed')

            async def lapse() -> None:  # observed, not slept: the key expires in Redis
                held = await a.driver('r1')
                await until(lambda: _changed(b, 'r1', held), 'the control lease to lapse')
            await control_contract(a, lapse)
            await presence_contract(b)
            robot, users = Inbox(), Inbox()
            await a.listen_robot('r1', robot)
            await a.listen_users('r1', users)
            await until(a.healthy, 'broker a subscribed again')
            await b.to_robot('r1', {'message': {'type': 'stop'}})  # from the other instance
            await b.to_users('r1', {'to': 'x', 'message': {'type': 'ack'}})
            assert (await robot.next())['message'] == {'type': 'stop'}
            assert (await users.next())['to'] == 'x'
            await a.unlisten_robot('r1')
            await b.to_robot('r1', {'message': {'type': 'drive'}})
            await b.to_users('r1', {'to': None, 'control': None})
            await users.next()  # the later message arrived, the unlistened one did not
            assert robot.queue.empty()
            await forward_contract(b, a)
        finally:
            for broker in (a, b):
                await broker.close()
    run(scenario())


async def _changed(broker: Broker, robot_id: str, held: Any) -> bool:
    return await broker.driver(robot_id) != held


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        await asyncio.sleep(0.02)


def test_redis_broker_without_redis_raises_unavailable():
    async def scenario() -> None:
        broker = RedisBroker(f'redis://127.0.0.1:{free_port()}/0')
        await broker.start()
        try:
            assert not await broker.healthy()
            for call in (broker.is_online('r1'), broker.driver('r1'),
                         broker.take_control('r1', 's', False), broker.renew_control('r1', 's'),
                         broker.release_control('r1', 's'), broker.robot_online('r1', 'i'),
                         broker.to_robot('r1', {})):
                with pytest.raises(BrokerUnavailable):
                    await call
        finally:
            await broker.close()
    run(scenario())
