"""RelayCore in-process (aiohttp's test server, a MemoryBroker): sessions, control, leases."""
from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Optional

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from havatar_relay import protocol as p
from havatar_relay.brokers import BrokerUnavailable, MemoryBroker
from havatar_relay.accounts import Accounts
from havatar_relay.relay_core import RelayCore
from havatar_relay.session import Limits
from havatar_testing.relay import Client, drive

ACCOUNTS = Accounts(robots={'robot1': 'robot1-token'},
                    users={'alice': ('alice-token', ['robot1']), 'bob': ('bob-token', ['robot1']),
                           'carol': ('carol-token', ['robot2'])})
FAST = Limits(heartbeat_s=0.2, lease_period_s=0.05)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


@asynccontextmanager
async def relay(broker: Optional[MemoryBroker] = None, limits: Limits = FAST) -> AsyncIterator[tuple[str, RelayCore]]:
    """A relay core served on a free loopback port; its base URL."""
    core = RelayCore(broker or MemoryBroker(), ACCOUNTS, instance='test', limits=limits)
    app = web.Application()
    app.router.add_get('/ws', core.handle)

    async def start(app: web.Application) -> None:
        await core.start()

    async def stop(app: web.Application) -> None:
        await core.close()
    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    server = TestServer(app, host='127.0.0.1')
    await server.start_server()
    try:
        yield str(server.make_url('')).rstrip('/'), core
    finally:
        await server.close()


class LocalRobot:
    """A robot attached in-process, as the robot's own server attaches it."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, p.Message]] = []
        self.arrived = asyncio.Event()

    async def deliver(self, message: p.Message) -> None:
        self.messages.append((time.monotonic(), message))
        self.arrived.set()

    def of(self, kind: type) -> list[tuple[float, Any]]:
        return [(t, m) for t, m in self.messages if isinstance(m, kind)]

    async def wait_for(self, kind: type, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while not self.of(kind):
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), max(0.01, deadline - time.monotonic()))
        return self.of(kind)[-1][1]


def test_hello_gets_a_welcome_saying_who_is_online_and_driving():
    async def scenario() -> None:
        async with relay() as (base, _):
            alone = await Client.connect(base, 'user', 'alice-token', 'robot1')
            assert alone.welcome and not alone.welcome['robot_online'] and alone.welcome.get('driver') is None
            robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
            assert robot.welcome['role'] == 'robot' and robot.welcome['heartbeat_ms'] == 200
            bob = await Client.connect(base, 'user', 'bob-token', 'robot1')
            assert bob.welcome['robot_online'] and bob.welcome['session_id']
            await alone.send({'type': 'take_control'})
            await alone.until('control', lambda m: m['you'])
            later = await Client.connect(base, 'user', 'bob-token', 'robot1')
            assert later.welcome['driver'] == alone.welcome['session_id']
            for c in (alone, robot, bob, later):
                await c.close()
    run(scenario())


def test_the_welcome_is_the_first_frame_after_the_hello():
    async def scenario() -> None:
        async with relay() as (base, _):
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(base.replace('http', 'ws') + '/ws') as ws:
                    await ws.send_str(json.dumps({'type': 'hello', 'role': 'user',
                                                  'token': 'alice-token', 'robot_id': 'robot1'}))
                    first = json.loads((await ws.receive(timeout=5)).data)
                    second = json.loads((await ws.receive(timeout=5)).data)
            assert (first['type'], second['type']) == ('welcome', 'ping')
    run(scenario())


def test_unknown_tokens_and_robots_are_unauthorized_and_closed():
    async def scenario() -> None:
        async with relay() as (base, _):
            for role, token, robot in [('user', 'nope', 'robot1'), ('user', 'carol-token', 'robot1'),
                                       ('robot', 'alice-token', 'robot1'), ('robot', 'robot1-token', 'robot2')]:
                c = await Client.connect(base, role, token, robot)
                assert c.welcome is None and c.refusal['code'] == 'unauthorized', (role, token, robot)
                assert (await c.next())['type'] == '_closed'
                await c.close()
    run(scenario())


def test_one_driver_at_a_time_and_take_over_with_force():
    async def scenario() -> None:
        async with relay() as (base, _):
            robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
            alice = await Client.connect(base, 'user', 'alice-token', 'robot1')
            bob = await Client.connect(base, 'user', 'bob-token', 'robot1')
            await alice.send(drive(1))  # nobody drives: the first command takes control
            assert (await robot.next('drive'))['seq'] == 1
            await bob.send(drive(2))
            assert (await bob.next('error'))['code'] == 'not_driver'
            await bob.send({'type': 'stop'})  # anyone may stop
            assert (await robot.next('stop'))['type'] == 'stop'
            await bob.send({'type': 'take_control', 'force': True})
            await bob.until('control', lambda m: m['you'])
            await alice.until('control', lambda m: not m['you'])
            await alice.send(drive(3))
            assert (await alice.next('error'))['code'] == 'not_driver'
            await bob.send(drive(4))
            assert (await robot.next('drive'))['seq'] == 4
            for c in (robot, alice, bob):
                await c.close()
    run(scenario())


def test_a_stop_after_driving_passes_the_rate_limit_and_a_redundant_one_does_not():
    async def scenario() -> None:
        async with relay(limits=Limits(user_rate=0.1, user_burst=3.0)) as (base, _):
            robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
            alice = await Client.connect(base, 'user', 'alice-token', 'robot1')
            for i in range(10):  # more than the burst (which her pongs share)
                await alice.send(drive(i))
            assert (await alice.next('error'))['code'] == 'rate_limited'
            assert (await robot.next('drive'))['seq'] == 0
            await alice.send({'type': 'stop'})  # over the limit, but the robot was moving
            assert (await robot.next('stop', timeout=2))['type'] == 'stop'
            await alice.send({'type': 'motor_control', 'direction': 'stop'})  # already stopped
            await alice.send({'type': 'stop'})
            with pytest.raises(asyncio.TimeoutError):
                await robot.next('stop', timeout=0.5)
            for c in (robot, alice):
                await c.close()
    run(scenario())


def test_the_robot_is_stopped_when_its_driver_leaves():
    async def scenario() -> float:
        async with relay() as (base, _):
            robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
            alice = await Client.connect(base, 'user', 'alice-token', 'robot1')
            await alice.send(drive(1))
            await robot.next('drive')
            left = time.monotonic()
            await alice.close()
            await robot.next('stop', timeout=2)
            elapsed = time.monotonic() - left
            bob = await Client.connect(base, 'user', 'bob-token', 'robot1')
            assert bob.welcome.get('driver') is None  # control was released
            for c in (robot, bob):
                await c.close()
            return elapsed
    assert run(scenario()) < 0.3


def test_leases_flow_to_a_local_robot_while_its_driver_is_live_and_stop_when_it_goes_silent():
    async def scenario() -> None:
        async with relay() as (base, core):
            robot = LocalRobot()
            await core.attach_local_robot('robot1', robot.deliver)
            alice = await Client.connect(base, 'user', 'alice-token', 'robot1')
            assert alice.welcome['robot_online']
            await alice.send({'type': 'motor_control', 'direction': 'forward'})
            held = await robot.wait_for(p.MotorControl)
            assert held.id == alice.welcome['session_id']
            await asyncio.sleep(4 * FAST.driver_silence_s)  # live (answering pings): leases go on
            leases = [m for _, m in robot.of(p.Lease)]
            assert len(leases) >= 10 and {m.driver for m in leases} == {held.id}
            assert {m.ttl_ms for m in leases} == {FAST.lease_ttl_ms}
            alice.answer_pings = False  # silent from now on
            silent = time.monotonic()
            await robot.wait_for(p.Stop, timeout=10 * FAST.heartbeat_s)  # the relay drops her
            last_lease = robot.of(p.Lease)[-1][0]
            assert last_lease - silent < FAST.driver_silence_s + 2 * FAST.lease_period_s
            stopped = robot.of(p.Stop)[-1][0]
            await asyncio.sleep(3 * FAST.lease_period_s)
            assert robot.of(p.Lease)[-1][0] < stopped  # and no lease after the stop
            await alice.close()
    run(scenario())


class FlakyBroker(MemoryBroker):
    """A broker whose shared state can be made unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise BrokerUnavailable('test: broker down')

    async def is_online(self, robot_id: str) -> bool:
        self._check()
        return await super().is_online(robot_id)

    async def driver(self, robot_id: str) -> Optional[str]:
        self._check()
        return await super().driver(robot_id)


def test_an_unreachable_broker_gets_unavailable_not_a_dropped_connection():
    async def scenario() -> None:
        broker = FlakyBroker()
        async with relay(broker) as (base, _):
            robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
            alice = await Client.connect(base, 'user', 'alice-token', 'robot1')
            broker.down = True
            await alice.send(drive(1))
            assert (await alice.next('error'))['code'] == 'unavailable'
            bob = await Client.connect(base, 'user', 'bob-token', 'robot1')
            assert bob.welcome is None and bob.refusal['code'] == 'unavailable'
            assert (await bob.next())['type'] == '_closed'
            broker.down = False  # back: the same connection drives
            await alice.send(drive(2))
            assert (await robot.next('drive'))['seq'] == 2
            for c in (robot, alice, bob):
                await c.close()
    run(scenario())
