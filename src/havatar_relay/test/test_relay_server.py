"""The cloud relay server as a real process (and two sharing Redis), with protocol clients."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import aiohttp
import pytest

from havatar_testing import free_port, ros_executable
from havatar_testing.relay import Client, drive
from havatar_testing.systemd import NotifySocket


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_wrong_or_missing_tokens_are_refused(relay_server):
    base = relay_server()

    async def scenario():
        for role, token, robot in [('user', 'nope', 'robot1'), ('user', 'carol-token', 'robot1'),
                                   ('robot', 'alice-token', 'robot1'), ('robot', 'robot2-token', 'robot1')]:
            c = await Client.connect(base, role, token, robot)
            assert c.welcome is None and c.refusal['code'] == 'unauthorized', (role, token)
            assert (await c.next())['type'] == '_closed'
            await c.close()
        # no hello at all: a drive as first message
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(base.replace('http', 'ws') + '/ws') as ws:
                await ws.send_str(json.dumps(drive(1)))
                reply = json.loads((await ws.receive()).data)
                assert reply['code'] == 'hello_required'
    run(scenario())


def test_drive_reaches_the_robot_and_the_ack_comes_back(relay_server):
    base = relay_server()

    async def scenario():
        robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
        alice = await Client.connect(base, 'user', 'alice-token', 'robot1')
        assert alice.welcome['robot_online']
        sent = drive(7, 0.3, -0.5)
        await alice.send(sent)
        got = await robot.next('drive')
        assert (got['seq'], got['linear'], got['angular']) == (7, 0.3, -0.5)
        assert abs(got['ts'] - sent['ts']) < 1000  # re-stamped into the relay clock
        await robot.send({'type': 'ack', 'id': got['id'], 'seq': 7, 'sent_ts': sent['ts'],
                          'robot_ts': 1.0, 'executed': True})
        ack = await alice.next('ack')
        assert ack['seq'] == 7 and ack['executed']
        control = await alice.next('control')
        assert control['you']
        for c in (robot, alice):
            await c.close()
    run(scenario())


def test_one_driver_at_a_time_with_explicit_takeover(relay_server):
    base = relay_server()

    async def scenario():
        robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
        alice = await Client.connect(base, 'user', 'alice-token', 'robot1')
        bob = await Client.connect(base, 'user', 'bob-token', 'robot1')
        await alice.send({'type': 'take_control'})
        assert (await alice.next('control'))['you']
        await bob.send(drive(1))
        error = await bob.next('error')
        assert error['code'] == 'not_driver'
        await bob.send({'type': 'take_control', 'force': True})
        await bob.until('control', lambda m: m['you'])
        await alice.until('control', lambda m: not m['you'])
        await bob.send(drive(2))
        assert (await robot.next('drive'))['seq'] == 2
        for c in (robot, alice, bob):
            await c.close()
    run(scenario())


@pytest.mark.parametrize('how', ['disconnect', 'silence'])
def test_driver_loss_stops_the_robot(relay_server, how):
    base = relay_server(heartbeat=0.2)

    async def scenario():
        robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
        alice = await Client.connect(base, 'user', 'alice-token', 'robot1', answer_pings=how != 'silence')
        await alice.send(drive(1))
        await robot.next('drive')
        lost = time.monotonic()
        if how == 'disconnect':
            await alice.close()
        stop = await robot.next('stop', timeout=5)
        elapsed = time.monotonic() - lost
        assert stop['type'] == 'stop'
        if how == 'disconnect':
            assert elapsed < 0.3, f'stop after {elapsed * 1000:.0f} ms'
        else:
            assert elapsed < 3 * 0.2 + 0.2 + 0.3
        await robot.close()
        if how == 'silence':
            await alice.close()
    run(scenario())


def test_two_instances_share_robots_through_redis(relay_server, redis_url):
    a = relay_server(redis_url, name='relay-a')
    b = relay_server(redis_url, name='relay-b')

    async def scenario():
        robot = await Client.connect(b, 'robot', 'robot1-token', 'robot1')
        alice = await Client.connect(a, 'user', 'alice-token', 'robot1')
        bob = await Client.connect(b, 'user', 'bob-token', 'robot1')
        assert alice.welcome['robot_online']
        await alice.send(drive(11))
        got = await robot.next('drive')
        assert got['seq'] == 11
        await robot.send({'type': 'ack', 'id': got['id'], 'seq': 11, 'executed': True})
        assert (await alice.next('ack'))['seq'] == 11
        await bob.send(drive(12))  # alice (on the other instance) drives
        assert (await bob.next('error'))['code'] == 'not_driver'
        await robot.send({'type': 'status', 'robot_id': 'robot1', 'battery': {'voltage': 7.7, 'present': True}})
        assert (await alice.next('status'))['battery']['voltage'] == 7.7
        assert (await bob.next('status'))['battery']['voltage'] == 7.7
        await alice.close()  # the driver leaves instance A: the robot on B stops
        assert (await robot.next('stop', timeout=2))['type'] == 'stop'
        for c in (robot, bob):
            await c.close()
    run(scenario())
    with urllib.request.urlopen(urllib.request.Request(
            a + '/api/status', headers={'Authorization': 'Bearer bob-token'}), timeout=5) as r:
        status = json.load(r)
    assert [robot['robot_id'] for robot in status['robots']] == ['robot1']


def test_bad_input_is_refused_and_floods_are_limited_per_connection(relay_server):
    base = relay_server()

    async def scenario():
        robot1 = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
        robot2 = await Client.connect(base, 'robot', 'robot2-token', 'robot2')
        alice = await Client.connect(base, 'user', 'alice-token', 'robot1')
        carol = await Client.connect(base, 'user', 'carol-token', 'robot2')
        for frame, code in [('not json', 'bad_json'), ('{"type":"warp"}', 'unknown_type'),
                            (json.dumps(drive(1, linear=99)), 'invalid'),
                            ('{"type":"drive"}', 'invalid'),
                            (json.dumps({'type': 'say', 'text': 'x' * 9000}), 'too_large'),
                            (json.dumps({'type': 'status'}), 'invalid')]:
            await alice.send(frame)
            assert (await alice.next('error'))['code'] == code, frame[:40]
        for i in range(400):  # flood
            await alice.send(drive(100 + i))
        limited = await alice.next('error')
        assert limited['code'] == 'rate_limited'
        # carol drives robot2 on the same instance, unaffected
        started = time.monotonic()
        for i in range(20):
            await carol.send(drive(i))
            assert (await robot2.next('drive'))['seq'] == i
            await asyncio.sleep(0.02)
        assert time.monotonic() - started < 3
        for c in (robot1, robot2, alice, carol):
            await c.close()
    run(scenario())


def test_metrics_and_health(relay_server):
    base = relay_server()
    with urllib.request.urlopen(base + '/metrics', timeout=5) as r:
        text = r.read().decode()
    assert 'havatar_relay_connections' in text
    with urllib.request.urlopen(base + '/health', timeout=5) as r:
        assert json.load(r)['ok']


def test_relay_tells_systemd_it_is_ready_once_it_listens(processes, tmp_path):
    """Type=notify (systemd/havatar-relay.service): READY=1 comes when /health answers."""
    systemd = NotifySocket(tmp_path / 'notify')
    try:
        port = free_port()
        relay = processes.start('relay', [ros_executable('havatar_relay', 'relay_server'),
                                  '--host', '127.0.0.1', '--port', str(port)], env=systemd.env)
        systemd.wait_for('READY=1', timeout=15, alive=relay.running)
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=5) as answer:
            assert answer.status == 200  # already listening when it said so
    finally:
        systemd.close()
