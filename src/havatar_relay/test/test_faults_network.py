"""Fault suite: the network between the robot and its relay, and between the relays and
Redis, misbehaves (Toxiproxy in between: black hole, delay, bandwidth limit, a cut in the
middle of a message). The robot is on relay b through the fault; the driver on relay a.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from havatar_testing.faults import report, run


@pytest.fixture
def robot_link(cloud_robot, toxiproxy):
    """(rig, proxy between the robot and relay b). Commands may be 1 s old: with 300 ms of
    delay each way the default 0.3 s would (rightly) drop most of them.
    """
    proxies = []
    rig = cloud_robot(robot_via=lambda port: proxies.append(toxiproxy.proxy('robot-link', port))
                      or proxies[0].port, max_command_age=1.0)
    return rig, proxies[0]


async def black_hole(rig, link, seconds: float) -> tuple[float, float]:
    """Hold forward, black-hole ``link`` (packets dropped both ways, nothing ever closes) for
    ``seconds``; (stop time, time from the end of the hole until a user drives again).
    """
    alice = await rig.user('a')
    await rig.hold_forward(alice)
    t0 = time.time()
    hole = link.black_hole()
    stop = await asyncio.to_thread(rig.stop_after, t0)
    await asyncio.sleep(max(0.0, t0 + seconds - time.time()))
    healed = time.time()
    hole.remove()
    recovery = await rig.drive_again('a', healed)
    await rig.close_users()
    return stop, recovery


def test_robot_link_black_holed(robot_link):
    rig, link = robot_link
    stop, recovery = run(black_hole(rig, link, 4.0))
    report('robot link black-holed', stop, recovery, '(recovery from the end of the black hole)')
    assert stop < 1.0
    assert recovery < 10.0


def test_robot_link_delayed(robot_link):
    rig, link = robot_link

    async def scenario() -> tuple[float, float]:
        link.latency(300, jitter=100, stream='both')
        alice = await rig.user('a')
        moving = await rig.hold_forward(alice)
        await asyncio.sleep(3.0)  # late leases still keep a held command going
        assert not rig.stopped_since(moving), 'a delayed link must not stop a live driver'
        t0 = time.time()
        await alice.close()  # the driver leaves: the relay's stop crosses the slow link
        rig.users.remove(alice)
        stop = await asyncio.to_thread(rig.stop_after, t0)
        recovery = await rig.drive_again('a', time.time())
        await rig.close_users()
        return stop, recovery
    stop, recovery = run(scenario())
    report('robot link delayed 300 +- 100 ms each way', stop, recovery,
           '(stop: driver leaves; recovery: time to drive again over the slow link)')
    assert stop < 1.0
    assert recovery < 5.0


def test_robot_link_bandwidth_limited(robot_link):
    rig, link = robot_link

    async def scenario() -> float:
        link.bandwidth(2, stream='both')  # 2 kB/s: leases, acks and status still fit
        alice = await rig.user('a')
        moving = await rig.hold_forward(alice)
        await asyncio.sleep(3.0)
        assert not rig.stopped_since(moving)
        t0 = time.time()
        await alice.close()
        rig.users.remove(alice)
        stop = await asyncio.to_thread(rig.stop_after, t0)
        await rig.close_users()
        return stop
    stop = run(scenario())
    report('robot link limited to 2 kB/s', stop, None, '(stop: driver leaves)')
    assert stop < 1.0


def test_robot_link_cut_mid_message(robot_link):
    rig, link = robot_link

    async def scenario() -> tuple[float, float]:
        alice = await rig.user('a')
        await rig.hold_forward(alice)
        t0 = time.time()
        link.limit_data(37, stream='downstream')  # closes inside the next frame to the robot
        stop = await asyncio.to_thread(rig.stop_after, t0)
        link.clear()
        cleared = time.time()
        recovery = await rig.drive_again('a', cleared)
        await rig.close_users()
        return stop, recovery
    stop, recovery = run(scenario())
    report('robot link cut in the middle of a message', stop, recovery)
    assert stop < 1.0
    assert recovery < 10.0


def test_redis_link_black_holed(cloud_robot, toxiproxy):
    proxies = []
    rig = cloud_robot(redis_via=lambda port: proxies.append(toxiproxy.proxy('redis', port))
                      or proxies[0].port)
    stop, recovery = run(black_hole(rig, proxies[0], 3.0))
    report('relays to Redis black-holed', stop, recovery, '(recovery from the end of the black hole)')
    assert stop < 1.0
    assert recovery < 10.0
