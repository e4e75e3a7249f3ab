"""The incident recorder beside the real nodes: each stop reason, triggered for real, gives a
file the mcap reader reads back with the messages before the stop at their times.
"""
from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from std_msgs.msg import Bool

from havatar_bringup.graph import parameter_arguments
from havatar_bringup.processes import wait_until
from havatar_testing.faults import run
from havatar_testing.relay import LOCAL_TOKEN, Client, drive
from havatar_testing.ros import TwistSource, ros_executable

S = 1e9
DRIVING = (0.25, 0.0)  # what the driver publishes (m/s, rad/s); times are wall clock, as in the files


class Recorder:
    """A running incident recorder: its directory, and what its diagnostics say it heard."""

    def __init__(self, directory: Path, diagnostics) -> None:
        self.directory = directory
        self.diagnostics = diagnostics

    def wait_heard(self, *topics: str, nodes: tuple[str, ...] = ('motor_node',), timeout: float = 20.0) -> None:
        """Until the recorder has received ``topics`` and the diagnostics of ``nodes`` (DDS
        discovery done: the counters' first values are the baselines of its reasons).
        """
        def heard(m) -> bool:
            for s in m.status:
                if s.name == 'incident_recorder: recorder':
                    values = {kv.key: set(kv.value.split(',')) for kv in s.values}
                    return set(topics) <= values['heard'] and set(nodes) <= values['nodes']
            return False
        self.diagnostics.wait_for(heard, timeout=timeout, what=f'the recorder hearing {topics} and {nodes}')


@pytest.fixture
def recorder(processes, tmp_path, ros_node):
    """Starts the incident recorder writing to a directory of the test's."""
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')

    def start(hears: tuple[str, ...] = ('/battery',), nodes: tuple[str, ...] = ('motor_node',),
              **params: object) -> Recorder:
        directory = tmp_path / 'incidents'
        node = processes.start('incident_recorder', [
            ros_executable('havatar_bringup', 'incident_recorder'), '--ros-args',
            *parameter_arguments({'directory': directory, 'post_seconds': 0.5, 'diagnostics_period': 0.2,
                                  **params})])
        node.wait_for_output('keeping the last', timeout=20)
        running = Recorder(directory, diagnostics)
        running.wait_heard(*hears, nodes=nodes)
        return running
    return start


def incident(directory: Path, reason: str, timeout: float = 15.0) -> dict:
    """The first incident file naming ``reason``, read back: messages by topic, metadata, note."""
    path = wait_until(lambda: next(iter(sorted(directory.glob(f'*{reason}*.mcap'))), None), timeout,
                      f'an incident file for {reason}')
    with path.open('rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        topics: dict[str, list[tuple[float, object]]] = {}
        for _, channel, message, decoded in reader.iter_decoded_messages(log_time_order=True):
            topics.setdefault(channel.topic, []).append((message.log_time / S, decoded))
        stream.seek(0)
        metadata = {m.name: m.metadata for m in make_reader(stream).iter_metadata()}
    note = json.loads(topics['/incident'][0][1].data)
    return {'path': path, 'topics': topics, 'metadata': metadata['havatar_incident'], 'note': note,
            'time': topics['/incident'][0][0]}


def moving(wheels: list[tuple[float, object]]) -> list[float]:
    return [t for t, w in wheels if w.left or w.right]


def check_common(found: dict, reason: str, keep_seconds: float = 30.0, battery: bool = True) -> None:
    assert reason in found['metadata']['reasons'].split(',')
    assert reason in found['note']['reasons']
    times = [t for messages in found['topics'].values() for t, _ in messages]
    assert found['time'] - min(times) <= keep_seconds + 0.1
    assert moving(found['topics']['/wheel_commands']), 'the wheels turning before the stop'
    assert '/diagnostics' in found['topics'] and ('/battery' in found['topics']) == battery


def test_a_deadman_stop_is_recorded_with_the_commands_before_it(start_sim, start_motor_node, recorder,
                                                                  ros_node):
    sim = start_sim('v1')
    start_motor_node(sim.port, diagnostics_period=0.2, max_linear_accel=0.0)
    directory = recorder().directory
    ros_node.wait_for_publishers('wheel_commands')
    driver = TwistSource(ros_node, 'cmd_vel', DRIVING, clock=time.time)
    try:
        sim.wait_for_line(lambda line: line == 'PWM 128 128', timeout=15)
        time.sleep(0.5)
    finally:
        last = driver.stop()
    found = incident(directory, 'deadman')
    check_common(found, 'deadman')
    commands = found['topics']['/cmd_vel']
    assert all(m.linear.x == 0.25 for _, m in commands), "only the driver's commands"
    assert abs(commands[-1][0] - last) < 0.3, 'the last command at its time'
    wheels = found['topics']['/wheel_commands']
    stop = next(t for t, w in wheels if t > moving(wheels)[-1])
    assert 0.5 - 0.1 <= stop - commands[-1][0] <= 0.5 + 0.4, 'the deadman stop, cmd_timeout after'
    assert stop <= found['time'] <= stop + 0.2 + 0.5, 'seen at the next diagnostics'
    assert found['path'].stat().st_size < 1_000_000


def test_the_drivers_own_stop_is_no_incident(start_sim, start_motor_node, recorder, ros_node):
    sim = start_sim('v1')
    start_motor_node(sim.port, diagnostics_period=0.2, max_linear_accel=0.0)
    directory = recorder().directory
    ros_node.wait_for_publishers('wheel_commands')
    driver = TwistSource(ros_node, 'cmd_vel', DRIVING, clock=time.time)
    try:
        sim.wait_for_line(lambda line: line == 'PWM 128 128', timeout=15)
        driver.command = (0.0, 0.0)
        stopped, _ = sim.wait_for_line(lambda line: line == 'STOP', timeout=5)
    finally:
        driver.stop()
    # the deadman counts a stop 0.5 s after the last (zero) command; diagnostics every 0.2 s
    wait_until(lambda: time.time() > stopped + 2.0, 5, 'time for the deadman to be reported')
    assert list(directory.glob('*.mcap')) == []


def test_serial_loss_is_recorded(start_sim, start_motor_node, recorder, ros_node):
    sim = start_sim('v1')
    start_motor_node(sim.port, diagnostics_period=0.2, reconnect_period=0.2, max_linear_accel=0.0)
    directory = recorder().directory
    ros_node.wait_for_publishers('wheel_commands')
    driver = TwistSource(ros_node, 'cmd_vel', DRIVING, clock=time.time)
    try:
        sim.wait_for_line(lambda line: line == 'PWM 128 128', timeout=15)
        time.sleep(0.5)  # drive for a while: a diagnostics report sees the wheels turning
        unplugged = time.time()
        sim.control.send('unplug 1.0')
        found = incident(directory, 'serial_loss')
    finally:
        driver.stop()
    check_common(found, 'serial_loss')
    assert found['time'] >= unplugged
    assert any(s.message != 'connected (v1)' for t, m in found['topics']['/diagnostics'] if t > unplugged
               for s in m.status if s.name.endswith('ESP32 link'))


def test_the_firmware_watchdog_is_recorded(start_sim, start_motor_node, recorder, ros_node):
    rec = recorder(hears=(), nodes=())  # v2 has no battery telemetry: started first
    directory = rec.directory
    sim = start_sim('v2')
    node = start_motor_node(sim.port, diagnostics_period=0.2, max_linear_accel=0.0, cmd_timeout=5.0)
    ros_node.wait_for_publishers('wheel_commands')
    driver = TwistSource(ros_node, 'cmd_vel', DRIVING, clock=time.time)
    try:
        sim.wait_for_line(lambda line: line == 'PWM 128 128', timeout=20)
        rec.wait_heard('/cmd_vel', '/wheel_commands')
        time.sleep(0.5)  # drive for a while: a diagnostics report sees the wheels turning
        node.signal(signal.SIGSTOP)  # the firmware hears nothing for longer than its 2 s watchdog
        try:
            wait_until(lambda: sim.control.state()['left'] == 0, 5, 'the firmware watchdog to stop the motors')
        finally:
            node.signal(signal.SIGCONT)
        found = incident(directory, 'firmware_watchdog')
    finally:
        driver.stop()
    check_common(found, 'firmware_watchdog', battery=False)
    assert [p.name for p in directory.glob('*.mcap')] == [found['path'].name], \
        'the firmware booting before the first command is no incident'


def test_the_emergency_lock_is_recorded(start_sim, start_motor_node, recorder, ros_node, processes):
    sim = start_sim('v1')
    start_motor_node(sim.port, max_linear_accel=0.0)
    processes.start('twist_mux', [ros_executable('havatar_drivers', 'twist_mux'), '--ros-args',
                                  '-r', 'cmd_vel_out:=cmd_vel']).wait_for_output('muxing', timeout=20)
    rec = recorder()
    directory = rec.directory
    lock = ros_node.node.create_publisher(Bool, 'e_stop', 10)
    ros_node.wait_for_subscribers(lock, count=2)  # the mux and the recorder
    driver = TwistSource(ros_node, 'cmd_vel/web', DRIVING, clock=time.time)
    try:
        sim.wait_for_line(lambda line: line == 'PWM 128 128', timeout=15)
        rec.wait_heard('/cmd_vel', '/cmd_vel/web', '/wheel_commands')
        locked = time.time()
        lock.publish(Bool(data=True))
        found = incident(directory, 'emergency_lock')
    finally:
        driver.stop()
    check_common(found, 'emergency_lock')
    assert abs(found['time'] - locked) < 0.3
    assert [m.data for _, m in found['topics']['/e_stop']] == [True]
    web = found['topics']['/cmd_vel/web']
    assert web[-1][0] > found['time'], 'the web kept talking, recorded after the lock too'
    out = [(t, (m.linear.x, m.angular.z)) for t, m in found['topics']['/cmd_vel']]
    assert (0.0, 0.0) in [v for t, v in out if t > locked - 0.05], 'the mux stopped at once'
    assert [v for t, v in out if t > found['time'] + 0.1] in ([], [(0.0, 0.0)]), 'nothing passed the lock'


def test_stale_commands_dropped_are_recorded(relay_robot, recorder, ros_node):
    sim, base, _, _ = relay_robot(diagnostics_period=0.2)
    directory = recorder(nodes=('motor_node', 'relay_node')).directory

    async def scenario() -> None:
        user = await Client.connect(base, 'user', LOCAL_TOKEN, 'robot1')
        try:
            for seq in range(10):
                await user.send(drive(seq, linear=0.25))
                await asyncio.sleep(0.05)
            stale = drive(10, linear=0.25)
            stale['ts'] -= 5000  # five seconds late
            await user.send(stale)
            await asyncio.sleep(0.3)
        finally:
            await user.close()
    asyncio.run(scenario())
    found = incident(directory, 'stale_commands')
    check_common(found, 'stale_commands')
    relay = [dict((kv.key, kv.value) for kv in s.values) for _, m in found['topics']['/diagnostics']
             for s in m.status if s.name.endswith(': relay')]
    assert relay[-1]['dropped_stale_commands'] == '1'


def test_relay_loss_is_recorded(cloud_robot, recorder):
    rig = cloud_robot(relays=('a',), robot_on='a', diagnostics_period=0.2)
    directory = recorder(nodes=('motor_node', 'relay_node')).directory

    async def scenario() -> float:
        alice = await rig.user('a')
        await rig.hold_forward(alice)
        killed = time.time()
        rig.process('relay-a').signal(signal.SIGKILL)
        await asyncio.to_thread(rig.stop_after, killed)
        return killed
    killed = run(scenario())
    found = incident(directory, 'relay_loss')
    check_common(found, 'relay_loss')
    assert found['time'] >= killed
    relay = [dict((kv.key, kv.value) for kv in s.values)['cloud_relay'] for _, m in found['topics']['/diagnostics']
             for s in m.status if s.name.endswith(': relay')]
    assert relay[0] == 'connected' and relay[-1] == 'disconnected'
