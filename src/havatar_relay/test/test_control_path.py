"""The control path's defects, each pinned by a test with real processes: a stop never waits
behind a mode switch; the command gate has one owner; stamps cannot make a command live
longer; one bad message never cuts the robot off; every close of its hello is retried; the
relay's hello deadline, error replies and welcome ordering hold.
"""
from __future__ import annotations

import asyncio
import json
import random
import time

import aiohttp
from aiohttp import web
from geometry_msgs.msg import Twist
from rclpy.qos import QoSDurabilityPolicy, QoSProfile

from havatar_msgs.msg import StreamStatus
from havatar_relay import protocol as p
from havatar_testing.faults import FULL, run
from havatar_testing import free_port
from havatar_testing.relay import LOCAL_TOKEN, Client, drive
from havatar_testing.streaming import USERS

LATCHED = QoSProfile(depth=5, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


async def online_user(base: str, token: str = 'alice-token', timeout: float = 20) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        user = await Client.connect(base, 'user', token, 'robot1')
        if user.welcome and user.welcome['robot_online']:
            return user
        await user.close()
        assert time.monotonic() < deadline, 'the robot never came online'
        await asyncio.sleep(0.3)


def test_stop_is_not_queued_behind_a_mode_switch(relay_server, relay_robot, sources, streaming_node,
                                                  mediamtx_factory, ros_node):
    server = mediamtx_factory(users=USERS)
    sources()
    streaming_node(server, mode='server')
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.active_mode == 'server', timeout=30, what='server mode active')
    relay = relay_server()
    sim, _, _, _ = relay_robot(relay_url=relay.replace('http', 'ws') + '/ws')

    async def scenario() -> float:
        alice = await online_user(relay)
        bob = await online_user(relay, 'bob-token')
        while True:  # the relay node knows the streaming node (and its mode service) now
            await alice.send({'type': 'get_status'})
            if (await alice.next('status'))['stream']['active'] == 'server':
                break
            await asyncio.sleep(0.2)
        after = time.time()
        await alice.send({'type': 'motor_control', 'direction': 'forward', 'speed': 255})
        sim.wait_for_line(lambda line: line == FULL, after=after)
        await alice.send({'type': 'set_mode', 'mode': 'local'})  # stops the H.264 session
        sent = time.time()
        await bob.send({'type': 'stop'})  # any user may stop
        stopped, _ = await asyncio.to_thread(sim.wait_for_line, lambda line: line == 'STOP', sent)
        for user in (alice, bob):
            await user.close()
        return stopped - sent
    elapsed = run(scenario())
    status.wait_for(lambda m: m.active_mode == 'local', timeout=10, what='the switch to local')
    print(f'\nSTOP {elapsed * 1000:.1f} ms after a stop sent right behind set_mode')
    assert elapsed < 0.1


def test_interleaved_commands_never_leave_a_twist_after_a_stop(relay_robot, ros_node):
    _, base, _, _ = relay_robot()
    commands = ros_node.subscribe(Twist, 'cmd_vel', 1000)
    rng = random.Random(7)
    stops: list[tuple[float, float]] = []  # each checked stop: when it was sent, when the quiet ended

    async def scenario() -> None:
        user = await Client.connect(base, 'user', LOCAL_TOKEN, 'robot1')
        for i in range(2000):
            kind = rng.choice(['motor_control', 'motor_control', 'drive', 'stop'])
            if kind == 'motor_control':
                await user.send({'type': 'motor_control', 'speed': 200,
                                 'direction': rng.choice(['forward', 'left', 'right', 'backward'])})
            elif kind == 'drive':
                await user.send(drive(i, 0.2, 0.5))
            else:
                await user.send({'type': 'stop'})
            if i % 50 == 49:  # a stop, then quiet: the held command must not come back
                await user.send({'type': 'stop'})
                sent = time.monotonic()
                await asyncio.sleep(0.5 if i % 100 == 49 else 2.0)  # within the rate limit (60/s, bursts of 120)
                stops.append((sent, time.monotonic()))
        await asyncio.sleep(1.0)
        await user.close()
    run(scenario(), 120)
    timed = commands.timed
    assert len(timed) > 500, f'only {len(timed)} cmd_vel messages arrived'
    moving_after_stop = []
    for sent, quiet_until in stops:  # what arrived in the quiet time after a stop must end stopped
        window = [m for t, m in timed if sent < t < quiet_until]
        if window and (window[-1].linear.x or window[-1].angular.z):
            moving_after_stop.append((sent, window[-1].linear.x, window[-1].angular.z))
    assert len(stops) == 40 and not moving_after_stop, f'moving after a stop: {moving_after_stop}'
    assert timed[-1][1].linear.x == 0 and timed[-1][1].angular.z == 0


def test_every_edge_and_invalid_value_through_the_relay_then_drive(relay_server, relay_robot):
    relay = relay_server()
    sim, _, _, node = relay_robot(relay_url=relay.replace('http', 'ws') + '/ws')
    now = p.now_ms()
    accepted = [
        {'type': 'drive', 'ts': 0, 'seq': 0, 'linear': 0.1, 'angular': 0},
        {'type': 'drive', 'ts': 1e14, 'seq': 2**53 - 1, 'linear': -2, 'angular': 6},
        {'type': 'drive', 'ts': now + 3_600_000, 'seq': 1, 'linear': 2, 'angular': -6},
        {'type': 'drive', 'ts': now - 3_600_000, 'seq': 2, 'linear': 0.3, 'angular': 0, 'id': 'i' * 64},
        {'type': 'motor_control', 'direction': 'forward', 'speed': 0, 'ts': 0},
        {'type': 'motor_control', 'direction': 'backward', 'speed': 255, 'ts': now + 3_600_000},
        {'type': 'motor_control', 'direction': 'stop', 'speed': 255, 'seq': 2**53 - 1},
        {'type': 'stop', 'ts': 0}, {'type': 'stop', 'ts': 1e14, 'id': ''},
        {'type': 'say', 'text': 'ă' * p.MAX_SAY_CHARS}, {'type': 'set_mode', 'mode': 'server'},
        {'type': 'say', 'text': 'ț', 'lang': 'ro', 'voice': 'ro'}, {'type': 'stop_speaking', 'ts': 0},
        {'type': 'get_status', 'ts': 0}, {'type': 'ping', 'ts': 0}, {'type': 'release_control'},
        {'type': 'take_control', 'force': False}, {'type': 'take_control', 'force': True},
    ]
    refused = [
        {'type': 'drive', 'ts': -1, 'seq': 0, 'linear': 0, 'angular': 0},
        {'type': 'drive', 'ts': 1e15, 'seq': 0, 'linear': 0, 'angular': 0},
        {'type': 'drive', 'ts': True, 'seq': 0, 'linear': 0, 'angular': 0},
        {'type': 'drive', 'ts': 'now', 'seq': 0, 'linear': 0, 'angular': 0},
        {'type': 'drive', 'ts': now, 'seq': -1, 'linear': 0, 'angular': 0},
        {'type': 'drive', 'ts': now, 'seq': 2**53, 'linear': 0, 'angular': 0},
        {'type': 'drive', 'ts': now, 'seq': 0.5, 'linear': 0, 'angular': 0},
        {'type': 'drive', 'ts': now, 'seq': 0, 'linear': 2.01, 'angular': 0},
        {'type': 'drive', 'ts': now, 'seq': 0, 'linear': 0, 'angular': -6.01},
        {'type': 'drive', 'ts': now, 'seq': 0, 'linear': None, 'angular': 0},
        {'type': 'drive', 'ts': now, 'seq': 0, 'linear': 0, 'angular': 0, 'origin_ts': -5},
        {'type': 'motor_control', 'direction': 'up'},
        {'type': 'motor_control', 'direction': 'left', 'speed': 256},
        {'type': 'motor_control', 'direction': 'left', 'speed': -1},
        {'type': 'motor_control', 'direction': 'left', 'speed': True},
        {'type': 'say', 'text': ''}, {'type': 'say', 'text': 'x' * (p.MAX_SAY_CHARS + 1)},
        {'type': 'say', 'text': 'x', 'lang': 'romanian'}, {'type': 'say', 'text': 'x', 'voice': 'a b'},
        {'type': 'stop_speaking', 'force': True},
        {'type': 'set_mode', 'mode': 'cloud'}, {'type': 'take_control', 'force': 'yes'},
        {'type': 'stop', 'id': 'i' * 65}, {'type': 'stop', 'id': 5}, {'type': 'stop', 'extra': 1},
        {'type': 'lease', 'driver': 'me', 'ttl_ms': 10000},  # robots only hear it from a relay
        {'type': 'ack', 'seq': 1}, {'type': 'status'}, {'type': 'hello', 'role': 'user',
                                                          'token': 'alice-token', 'robot_id': 'robot1'},
        {'type': 'fly'}, [], 'null', '{"type":', 'x' * 9000,
    ]

    async def scenario() -> None:
        alice = await online_user(relay)
        await alice.send({'type': 'take_control', 'force': True})
        for message in accepted:
            await alice.send(message)
        # set_mode reaches the robot, which has no streaming node here: it answers, nothing more
        await alice.until('error', lambda m: 'set_mode' in m['message'], timeout=10)
        for message in refused:
            await alice.send(message if isinstance(message, str) else json.dumps(message))
            error = await alice.next('error')
            assert error['type'] == 'error', (message, error)
        await alice.ws.send_bytes(b'\x00\xff')
        assert (await alice.next('error'))['code'] == 'invalid'
        await alice.send({'type': 'stop'})
        await asyncio.sleep(1.0)
        # the robot is still there and drives
        after = time.time()
        for i in range(6):
            await alice.send(drive(100 + i, 0.5))
            await asyncio.sleep(0.05)
        await asyncio.to_thread(sim.wait_for_line, lambda line: line == FULL, after)
        acks = [m for m in alice.skipped if m['type'] == 'ack']
        stale = {a.get('seq') for a in acks if a.get('reason') == 'stale_command'}
        # stamps older than their arrival count; later ones count as sent when they arrived
        assert {0, 2} <= stale and 1 not in stale, acks
        await alice.close()
    run(scenario())
    assert 'cloud relay connection lost' not in node.output()
    assert 'Traceback' not in node.output()


async def fake_relay(script: list[str]) -> tuple[web.AppRunner, int, list[str]]:
    """A relay that answers the robot's hellos as ``script`` says, then welcomes it."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the hello
        action = script[len(seen)] if len(seen) < len(script) else 'welcome'
        seen.append(action)
        if action.startswith('close '):
            await ws.close(code=int(action.split()[1]), message=b'refused')
        elif action == 'error':
            await ws.send_str(p.dump(p.Error(code=p.ErrorCode.UNAVAILABLE, message='try later')))
            await ws.close(code=1013)
        elif action == 'garbage':
            await ws.send_str('{"type":')
        elif action == 'binary':
            await ws.send_bytes(b'\x01\x02')
        elif action == 'reset':
            request.transport.abort()  # type: ignore[union-attr]
        else:
            await ws.send_str(p.dump(p.Welcome(session_id='s', robot_id='robot1', role=p.Role.ROBOT,
                                               server_ts=p.now_ms())))
            async for frame in ws:  # answer pings until the test ends
                message = json.loads(frame.data)
                if message['type'] == 'ping':
                    await ws.send_str(p.dump(p.Pong(ts=message['ts'], peer_ts=p.now_ms())))
        return ws
    app = web.Application()
    app.router.add_get('/ws', handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, '127.0.0.1', port).start()
    return runner, port, seen


def test_the_robot_returns_after_every_kind_of_refused_hello(relay_robot):
    script = ['close 1000', 'close 1001', 'close 1008', 'close 1011', 'close 1013', 'close 4000',
              'close 4999', 'error', 'garbage', 'binary', 'reset']

    async def scenario() -> float:
        runner, port, seen = await fake_relay(script)
        try:
            started = time.monotonic()
            _, _, _, node = await asyncio.to_thread(
                relay_robot, relay_url=f'ws://127.0.0.1:{port}/ws', reconnect_max=1.0)
            while len(seen) <= len(script):
                assert time.monotonic() - started < 45, f'gave up after {seen}'
                await asyncio.sleep(0.1)
            await asyncio.to_thread(node.wait_for_output, 'connected to the cloud relay', 10)
            return time.monotonic() - started
        finally:
            await runner.cleanup()
    elapsed = run(scenario())
    print(f'\nwelcomed after {len(script)} refusals in {elapsed:.1f} s')


def test_pings_do_not_extend_the_hello_deadline(relay_server):
    base = relay_server()

    async def scenario() -> float:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(base.replace('http', 'ws') + '/ws', autoping=True) as ws:
                opened = time.monotonic()
                while not ws.closed and time.monotonic() - opened < 15:
                    await ws.ping()
                    try:
                        await ws.receive(timeout=0.3)
                    except asyncio.TimeoutError:
                        pass
                return time.monotonic() - opened
    open_for = run(scenario())
    assert open_for < 7.0, f'a connection sending only pings stayed {open_for:.1f} s'


def test_error_replies_for_long_ids_and_loose_types_keep_the_connection(relay_server):
    base = relay_server()

    async def scenario() -> None:
        alice = await Client.connect(base, 'user', 'alice-token', 'robot1')
        await alice.send({'type': 'drive', 'id': 'x' * 300, 'seq': 'one'})
        error = await alice.next('error')
        assert error['code'] == 'invalid' and error['ref'] == 'x' * 64
        await alice.send({'type': 'take_control', 'force': 'yes'})
        assert (await alice.next('error'))['code'] == 'invalid'
        await alice.send({'type': 'ping', 'ts': 1})
        assert (await alice.next('pong'))['ts'] == 1
        await alice.close()
    run(scenario())


def test_no_status_reaches_a_user_before_its_welcome(relay_server, redis_url):
    base = relay_server(redis_url)

    async def scenario() -> None:
        robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
        stop = asyncio.Event()

        async def chatter() -> None:
            while not stop.is_set():
                await robot.send({'type': 'status', 'robot_id': 'robot1'})
                await asyncio.sleep(0.007)
        task = asyncio.create_task(chatter())
        try:
            for _ in range(40):
                user = await Client.connect(base, 'user', 'alice-token', 'robot1')
                assert user.welcome is not None, getattr(user, 'refusal', None)
                await user.close()
        finally:
            stop.set()
            await task
            await robot.close()
    run(scenario())
