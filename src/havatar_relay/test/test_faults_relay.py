"""Fault suite: a relay instance dies or freezes while a user holds a command.

The robot is connected to relay b; the driver to relay a or b (both share Redis). The robot
must stop within one second of losing its driver, and be drivable again without restarting
anything.
"""
from __future__ import annotations

import asyncio
import signal
import time

import pytest

from havatar_testing.faults import report, run


def test_driver_relay_killed(cloud_robot):
    rig = cloud_robot()

    async def scenario() -> tuple[float, float]:
        alice = await rig.user('a')
        moving = await rig.hold_forward(alice)
        await asyncio.sleep(1.5)  # held longer than one lease: the leases keep it going
        assert not rig.stopped_since(moving)
        killed = time.time()
        rig.process('relay-a').signal(signal.SIGKILL)
        stop = await asyncio.to_thread(rig.stop_after, killed)
        # bob on b takes control without forcing it: the dead holder's lease lapses
        recovery = await rig.drive_again('b', killed)
        await rig.close_users()
        return stop, recovery
    stop, recovery = run(scenario())
    report('relay holding the driver SIGKILLed', stop, recovery, '(recovery: a user on the other relay drives)')
    assert stop < 1.0
    assert recovery < 5.0


def test_driver_lease_lapses_when_its_relay_dies(cloud_robot):
    rig = cloud_robot()

    async def scenario() -> float:
        alice = await rig.user('a')
        await alice.send({'type': 'take_control'})
        assert (await alice.until('control', lambda m: m['you']))['you']
        rig.process('relay-a').signal(signal.SIGKILL)
        killed = time.monotonic()
        bob = await rig.user('b', token='bob-token')
        while True:  # no force: it only works once the dead instance's lease lapsed
            await bob.send({'type': 'take_control'})
            control = await bob.until('control', lambda m: True)
            if control['you']:
                lapsed = time.monotonic() - killed
                await rig.close_users()
                return lapsed
            assert time.monotonic() - killed < 10, 'control never lapsed'
            await asyncio.sleep(0.2)
    lapsed = run(scenario())
    report('driver lease after its relay died', None, lapsed, '(time until another user may drive)')
    assert lapsed < 5.0


@pytest.mark.parametrize('frozen', ['a', 'b'], ids=['driver-relay', 'robot-relay'])
def test_relay_frozen(cloud_robot, frozen):
    rig = cloud_robot()

    async def scenario() -> tuple[float, float]:
        alice = await rig.user('a')
        await rig.hold_forward(alice)
        await asyncio.sleep(0.5)
        relay = rig.process(f'relay-{frozen}')
        stopped_at = time.time()
        relay.signal(signal.SIGSTOP)
        try:
            stop = await asyncio.to_thread(rig.stop_after, stopped_at)
            await asyncio.sleep(max(0.0, stopped_at + 5.0 - time.time()))  # a 5 s freeze
        finally:
            relay.signal(signal.SIGCONT)
        resumed = time.time()
        recovery = await rig.drive_again('a', resumed)
        await rig.close_users()
        return stop, recovery
    stop, recovery = run(scenario())
    report(f'relay {"holding the driver" if frozen == "a" else "of the robot"} frozen 5 s (SIGSTOP)',
           stop, recovery, '(recovery from SIGCONT)')
    assert stop < 1.0
    assert recovery < 10.0  # the robot's own relay: it noticed the silence and reconnects
