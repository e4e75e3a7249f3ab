"""Browser-protocol client -> (cloud relay ->) relay_node -> motor_node -> ESP32 simulator."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
from geometry_msgs.msg import Twist
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter

from havatar_testing import free_port, ros_executable, wait_until
from havatar_testing.relay import LOCAL_TOKEN, Client, drive
from havatar_testing.mediamtx import MediaMtxUser
from havatar_testing.streaming import USERS

SPEED = 0.25  # m/s -> 'PWM 128 128' with the motor node's defaults
TOKEN = LOCAL_TOKEN


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_local_mode_drives_the_simulator_and_stops_on_disconnect(relay_robot):
    sim, base, _, _ = relay_robot()

    async def scenario():
        user = await Client.connect(base, 'user', TOKEN, 'robot1')
        assert user.welcome and user.welcome['robot_online']
        for i in range(10):
            await user.send(drive(i, SPEED))
            await asyncio.sleep(0.05)
        ack = await user.next('ack')
        assert ack['executed'] and ack['robot_ts'] >= ack['sent_ts'] - 5
        sim.wait_for_line(lambda line: line == 'PWM 128 128', timeout=10)
        closed = time.time()
        await user.close()
        stop_time, _ = sim.wait_for_line(lambda line: line == 'STOP', after=closed, timeout=5)
        return stop_time - closed
    elapsed = run(scenario())
    assert elapsed < 0.3, f'stopped {elapsed * 1000:.0f} ms after the driver left'


def test_stale_commands_are_dropped(relay_robot):
    sim, base, _, _ = relay_robot()

    async def scenario():
        user = await Client.connect(base, 'user', TOKEN, 'robot1')
        old = drive(1, SPEED)
        old['ts'] -= 2000  # two seconds old
        await user.send(old)
        ack = await user.next('ack')
        assert not ack['executed'] and ack['reason'] == 'stale_command'
        await user.close()
    run(scenario())
    assert not [line for _, line in sim.commands() if line.startswith('PWM')]


def test_wrong_token_and_second_driver_are_refused(relay_robot):
    _, base, _, _ = relay_robot()

    async def scenario():
        intruder = await Client.connect(base, 'user', 'guess', 'robot1')
        assert intruder.refusal['code'] == 'unauthorized'
        await intruder.close()
        first = await Client.connect(base, 'user', TOKEN, 'robot1')
        second = await Client.connect(base, 'user', TOKEN, 'robot1')
        await first.send({'type': 'take_control'})
        await first.until('control', lambda m: m['you'])
        await second.send(drive(1, SPEED))
        assert (await second.next('error'))['code'] == 'not_driver'
        for c in (first, second):
            await c.close()
    run(scenario())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + '/system_status', timeout=5)
    assert refused.value.code == 401


def test_motor_control_of_the_original_ui_is_held_until_stop(relay_robot):
    sim, base, _, _ = relay_robot()

    async def scenario():
        user = await Client.connect(base, 'user', TOKEN, 'robot1')
        await user.send({'type': 'motor_control', 'direction': 'forward', 'speed': 255})
        await asyncio.sleep(1.5)  # longer than the motor node's 0.5 s deadman
        await user.send({'type': 'motor_control', 'direction': 'stop'})
        await asyncio.sleep(0.3)
        await user.close()
    run(scenario())
    lines = [line for _, line in sim.commands()]
    first = lines.index('PWM 255 255')
    assert lines[first:].count('STOP') == 1, f'held without a deadman stop: {lines}'
    assert lines[-1] == 'STOP'


def test_server_config_persists_and_http_api_answers(relay_robot):
    _, base, settings, node = relay_robot()
    auth = {'Authorization': f'Bearer {TOKEN}', 'Content-Type': 'application/json'}
    body = json.dumps({'enabled': False, 'server_url': 'rtsp://media.example.org:8554',
                       'stream_key': 'robot1', 'stream_password': 'pw', 'fallback_to_local': True})
    request = urllib.request.Request(base + '/server/config', data=body.encode(), headers=auth)
    with urllib.request.urlopen(request, timeout=10) as r:
        reply = json.load(r)
    assert reply['success'] and reply['stream_password_set'] and 'pw' not in json.dumps(reply)
    saved = json.loads(settings.read_text())['server_mode']
    assert saved['server_url'] == 'rtsp://media.example.org:8554'
    assert settings.stat().st_mode & 0o077 == 0
    bad = urllib.request.Request(base + '/server/config', data=b'{"enabled": true, "server_url": ""}',
                                 headers=auth)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=10)  # enabled without a server: refused, not saved
    assert refused.value.code == 400
    with urllib.request.urlopen(urllib.request.Request(base + '/system_status', headers=auth), timeout=5) as r:
        assert 'cpu_percent' in json.load(r)


def test_server_mode_through_the_cloud_relay(relay_robot, relay_server):
    relay = relay_server()
    sim, _, _, _ = relay_robot(relay_url=relay.replace('http', 'ws') + '/ws')

    async def scenario():
        user = await Client.connect(relay, 'user', 'alice-token', 'robot1')
        deadline = time.monotonic() + 15
        while not user.welcome['robot_online'] and time.monotonic() < deadline:
            await user.close()
            await asyncio.sleep(0.3)
            user = await Client.connect(relay, 'user', 'alice-token', 'robot1')
        assert user.welcome['robot_online']
        for i in range(10):
            await user.send(drive(i, SPEED))
            await asyncio.sleep(0.05)
        ack = await user.next('ack')
        assert ack['executed']
        sim.wait_for_line(lambda line: line == 'PWM 128 128', timeout=10)
        status = await user.next('status', timeout=10)
        assert status['robot_id'] == 'robot1'
        for i in range(10, 16):  # driving again when the driver leaves
            await user.send(drive(i, SPEED * 2))
            await asyncio.sleep(0.05)
        sim.wait_for_line(lambda line: line == 'PWM 255 255', timeout=10)
        closed = time.time()
        await user.close()
        stop_time, _ = sim.wait_for_line(lambda line: line == 'STOP', after=closed, timeout=5)
        return stop_time - closed
    elapsed = run(scenario())
    assert elapsed < 0.3, f'stopped {elapsed * 1000:.0f} ms after the driver left'


def test_robot_stops_when_the_relay_dies_and_reconnects_when_it_returns(relay_robot, relay_server,
                                                                        processes, ros_node):
    relay = relay_server(name='relay-1')
    port = int(relay.rsplit(':', 1)[1])
    _, _, _, node = relay_robot(relay_url=relay.replace('http', 'ws') + '/ws', reconnect_max=2.0)
    commands = ros_node.subscribe(Twist, 'cmd_vel')
    relay_process = next(p for p in processes.processes if p.name == 'relay-1')

    async def drive_then_lose_the_relay() -> float:
        user = await connect_when_online(relay)
        await user.send({'type': 'motor_control', 'direction': 'forward', 'speed': 255})
        await user.next('ack')
        await asyncio.sleep(0.5)  # the robot holds the command (10 Hz) while the driver is there
        await asyncio.to_thread(commands.wait_for, lambda m: m.linear.x > 0, 10,
                                'the held command on cmd_vel (DDS discovery may lag under load)')
        commands.clear()
        await asyncio.sleep(0.3)
        assert commands.messages and commands.messages[-1].linear.x > 0  # still held
        relay_process.signal(9)  # the relay vanishes; the user is still "connected" to it
        killed = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, lambda: commands.wait_for(
            lambda m: m.linear.x == 0, timeout=5, what='a stop when the relay vanished'))
        await user.close()
        return time.monotonic() - killed
    assert run(drive_then_lose_the_relay()) < 1.0
    node.wait_for_output('cloud relay connection lost', timeout=5)

    relay_server(name='relay-2', port=port)  # back on the same address

    async def reconnected() -> None:
        user = await connect_when_online(relay, timeout=20)
        await user.close()
    run(reconnected())


async def connect_when_online(base: str, timeout: float = 15.0) -> Client:
    """A user connection once the robot is online at the relay."""
    deadline = time.monotonic() + timeout
    while True:
        user = await Client.connect(base, 'user', 'alice-token', 'robot1')
        if user.welcome['robot_online']:
            return user
        await user.close()
        assert time.monotonic() < deadline, 'the robot did not come online at the relay'
        await asyncio.sleep(0.3)


def test_parameters_it_does_not_apply_are_refused_through_the_parameter_service(processes, ros_node,
                                                                                tmp_path):
    port = free_port()
    node = processes.start('relay_node', [
        ros_executable('havatar_relay', 'relay_node'), '--ros-args', '-p', 'robot_id:=robot1',
        '-p', f'http_port:={port}', '-p', 'http_host:=127.0.0.1',
        '-p', f"settings_file:={tmp_path / 'server_mode.json'}"], env={'HAVATAR_ACCESS_TOKEN': TOKEN})
    node.wait_for_output('web UI on', timeout=20)
    set_client = ros_node.node.create_client(SetParameters, '/relay_node/set_parameters')
    request = SetParameters.Request(parameters=[Parameter('max_linear', value=1.0).to_parameter_msg()])
    (result,) = ros_node.call(set_client, request).results  # what `ros2 param set` sends
    assert not result.successful and 'read-only' in result.reason, result
    get_client = ros_node.node.create_client(GetParameters, '/relay_node/get_parameters')
    (value,) = ros_node.call(get_client, GetParameters.Request(names=['max_linear'])).values
    assert value.double_value == 0.5


def test_server_config_moves_a_live_stream_in_one_step(relay_robot, sources, streaming_node,
                                                      mediamtx_factory, ros_node):
    first = mediamtx_factory(users=USERS)
    second = mediamtx_factory(users=[MediaMtxUser('robot1', 'second-secret', ('publish', 'read'), 'robot2'),
                                     MediaMtxUser('robot1', 'second-secret', ('read',), 'robot2/talk')])
    sources()
    streaming, _ = streaming_node(first, mode='server', api_url='none')
    streaming.wait_for_output('server mode active', timeout=30)
    _, base, _, _ = relay_robot()
    auth = {'Authorization': f'Bearer {TOKEN}', 'Content-Type': 'application/json'}
    url = f'rtsp://127.0.0.1:{second.ports.rtsp}'
    body = json.dumps({'enabled': True, 'server_url': url, 'stream_key': 'robot2',
                       'stream_password': 'second-secret', 'fallback_to_local': True})
    deadline = time.monotonic() + 20
    while True:  # until the relay node has discovered the streaming node's services
        request = urllib.request.Request(base + '/server/config', data=body.encode(), headers=auth)
        with urllib.request.urlopen(request, timeout=15) as r:
            reply = json.load(r)
        if reply['applied'] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert reply['success'] and reply['applied'], reply
    client = ros_node.node.create_client(GetParameters, '/streaming_node/get_parameters')
    values = ros_node.call(client, GetParameters.Request(names=['server_url', 'stream_key'])).values
    assert [values[0].string_value, values[1].string_value] == [url, 'robot2']
    wait_until(lambda: streaming.output().count('server mode active') >= 2, 30, 'the stream on the second server')
    # url, key and password changed together: one new session, never a half-changed one
    assert streaming.output().count('publishing to') == 2, streaming.output()
