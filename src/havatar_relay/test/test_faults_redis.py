"""Fault suite: Redis, the relays' shared state, dies in the middle of a drive and returns.

The robot stops (no leases can cross without Redis), both relays report themselves degraded,
and once Redis is back on the same address everything recovers by itself: subscriptions,
presence, control. Nothing is restarted by hand but Redis.
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request

from havatar_testing.faults import report, run
from havatar_testing import find_program


def health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(base + '/health', timeout=3) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_redis_killed_mid_drive_and_restarted(cloud_robot, processes, tmp_path):
    rig = cloud_robot()

    async def scenario() -> tuple[float, float]:
        alice = await rig.user('a')
        await rig.hold_forward(alice)
        killed = time.time()
        rig.process('redis-server').signal(signal.SIGKILL)
        stop = await asyncio.to_thread(rig.stop_after, killed)
        for base in rig.relays.values():
            deadline = time.monotonic() + 10
            while health(base)[0] != 503:
                assert time.monotonic() < deadline, f'{base} never reported the lost Redis'
                await asyncio.sleep(0.2)
            assert health(base)[1]['status'] == 'degraded'
        # a command meanwhile gets a clear error, and the connection stays
        await alice.send({'type': 'motor_control', 'direction': 'forward'})
        error = await alice.until('error', lambda m: True)
        assert error['code'] == 'unavailable', error
        await asyncio.sleep(2.0)
        restarted = time.time()
        server = processes.start('redis-server-2', [
            find_program('redis-server'), '--port', str(rig.redis_port), '--bind', '127.0.0.1',
            '--save', '', '--appendonly', 'no', '--dir', str(tmp_path)])
        server.wait_for_port(rig.redis_port, timeout=10)
        recovery = await rig.drive_again('a', restarted, timeout=15)
        for base in rig.relays.values():
            assert health(base)[0] == 200
        await rig.close_users()
        return stop, recovery
    stop, recovery = run(scenario())
    report('Redis killed mid-drive, restarted 2 s later', stop, recovery, '(recovery from the restart)')
    assert stop < 1.0
    assert recovery < 10.0
