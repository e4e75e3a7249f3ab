"""one_process:=true: the robot's nodes in one robot_container process.

It drives (cmd_vel to the ESP32 simulator's line), serves MJPEG, a stop and the deadman
still stop, every node has the parameters robot.yaml (and the graph's overrides) give it,
its death is covered like a motor node's (STOP at once, respawned), and a node that raises
ends the container (exit 1, the motors stopped) for its supervisor to restart it.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import time
from pathlib import Path

import psutil
import yaml
from geometry_msgs.msg import Twist
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import parameter_value_to_python

from havatar_bringup.container import EXIT_BAD_PARAMETER, EXIT_NODE_FAILED
from havatar_bringup.graph import GraphArgs, command_line, robot_graph
from havatar_testing import flat_parameters, ros_executable, wait_until
from havatar_testing.stack import fetch

_spec = importlib.util.spec_from_file_location('run_robot_helpers', Path(__file__).with_name('test_run_robot.py'))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)  # the run_robot tests' helpers (tests import no test modules by name)
FORWARD_PWM, V1_NO_WATCHDOG_BOUND_S = _helpers.FORWARD_PWM, _helpers.V1_NO_WATCHDOG_BOUND_S
nodes_named, params_file, wait_for_sim_line = _helpers.nodes_named, _helpers.params_file, _helpers.wait_for_sim_line

NODES = ('motor_node', 'camera_node', 'microphone_node', 'speaker_node', 'streaming_node', 'relay_node')
DEADMAN_BOUND_S = 1.0  # cmd_timeout 0.5 s + the v1 line period, with room for a loaded machine


def expected_parameters(entry) -> dict[str, object]:
    """What robot.yaml (the entry's parameter file) and the graph's overrides give a node."""
    values: dict[str, object] = {}
    for item in entry.parameters:
        if isinstance(item, str):
            values.update(flat_parameters(yaml.safe_load(Path(item).read_text())[f'/**/{entry.name}']['ros__parameters']))
        else:
            values.update(item)
    return values


def parameters_of(ros_node, name: str, names: list[str]) -> dict[str, object]:
    client = ros_node.node.create_client(GetParameters, f'/{name}/get_parameters')
    try:
        answer = ros_node.call(client, GetParameters.Request(names=names), timeout=30)
    finally:
        ros_node.node.destroy_client(client)
    return {n: parameter_value_to_python(v) for n, v in zip(names, answer.values)}


def test_one_process_robot_drives_serves_mjpeg_stops_and_has_robot_yaml_parameters(processes, tmp_path, ros_node):
    params, ui = params_file(tmp_path)
    mjpeg = yaml.safe_load(params.read_text())['/**/streaming_node']['ros__parameters']['mjpeg_port']
    sim_dir = tmp_path / 'sim'
    record = sim_dir / 'record.jsonl'
    robot = processes.start('run_robot', [
        ros_executable('havatar_bringup', 'run_robot'), 'sim:=true', 'one_process:=true',
        f'params_file:={params}', f'sim_dir:={sim_dir}', '--log-dir', tmp_path / 'robot-logs'],
        env={'HOME': str(tmp_path), 'HAVATAR_ACCESS_TOKEN': 'test-token'})
    robot.wait_for_http(f'http://127.0.0.1:{ui}/', timeout=120)
    root = psutil.Process(robot.pid)
    (container,) = nodes_named(root, 'relay_node')
    assert all(nodes_named(root, name) == [container] for name in NODES), 'one process holds every node'

    graph = robot_graph(GraphArgs(sim=True, one_process=True, params_file=str(params), sim_dir=str(sim_dir)))
    for entry in graph[-1].members:  # the parameters each node has are those of robot.yaml
        expected = expected_parameters(entry)
        assert parameters_of(ros_node, entry.name, sorted(expected)) == \
            {k: expected[k] for k in sorted(expected)}, entry.name

    status, body, _ = fetch(mjpeg, 'GET', '/snapshot.jpg', token='test-token')
    assert status == 200 and body[:2] == b'\xff\xd8', 'the MJPEG server serves the camera'

    forward, halt = Twist(), Twist()
    forward.linear.x = 0.25
    cmd_vel = ros_node.node.create_publisher(Twist, 'cmd_vel', 10)
    ros_node.wait_for_subscribers(cmd_vel)
    driving = [True]
    ros_node.node.create_timer(0.05, lambda: cmd_vel.publish(forward) if driving[0] else None)
    wait_for_sim_line(record, FORWARD_PWM, after=0.0)
    driving[0] = False  # the operator stops: a zero twist
    stopped_at = time.time()
    cmd_vel.publish(halt)
    stop = wait_for_sim_line(record, 'STOP', after=stopped_at)
    assert stop - stopped_at < DEADMAN_BOUND_S

    driving[0] = True
    wait_for_sim_line(record, FORWARD_PWM, after=stop)
    driving[0] = False  # the operator goes silent: the deadman stops the robot
    silent_at = time.time()
    stop = wait_for_sim_line(record, 'STOP', after=silent_at)
    assert stop - silent_at < DEADMAN_BOUND_S, f'deadman STOP after {stop - silent_at:.3f} s'

    driving[0] = True
    drove = wait_for_sim_line(record, FORWARD_PWM, after=stop)
    killed_at = time.time()
    container.kill()  # the container dies while driving: STOP at once, then it is respawned
    stop = wait_for_sim_line(record, 'STOP', after=max(killed_at, drove))
    assert stop - killed_at < V1_NO_WATCHDOG_BOUND_S
    wait_until(lambda: [p for p in nodes_named(root, 'motor_node') if p.pid != container.pid], 60,
               'a respawned robot_container')
    wait_for_sim_line(record, FORWARD_PWM, after=stop, timeout=60)  # driving again
    driving[0] = False
    assert robot.running()
    robot.signal(signal.SIGTERM)
    assert robot.wait_exit(timeout=60) == 0, robot.tail()


def test_a_node_that_raises_ends_the_container_after_stopping_the_motors(processes, tmp_path, ros_node):
    sim_dir = tmp_path / 'sim'
    sim_dir.mkdir()
    graph = {e.name: e for e in robot_graph(GraphArgs(sim=True, sim_dir=str(sim_dir)))}
    sim = processes.start('esp32_sim', [ros_executable('havatar_drivers', 'esp32_sim'), *graph['esp32_sim'].arguments])
    sim.wait_for_output('port:', timeout=30)
    motor = graph['motor_node']
    container = processes.start('robot_container', [
        ros_executable('havatar_bringup', 'robot_container'),
        *command_line(motor, 'motor_node'), '--',
        'failing_node:FailingNode', '--ros-args', '-p', 'fail_after:=4.0', '--'],
        env={'PYTHONPATH': os.pathsep.join([str(Path(__file__).parent), os.environ.get('PYTHONPATH', '')])})
    container.wait_for_output('2 nodes in one process', timeout=60)
    forward = Twist()
    forward.linear.x = 0.25
    cmd_vel = ros_node.node.create_publisher(Twist, 'cmd_vel', 10)
    ros_node.node.create_timer(0.05, lambda: cmd_vel.publish(forward))
    drove = wait_for_sim_line(sim_dir / 'record.jsonl', FORWARD_PWM, after=0.0)
    assert container.wait_exit(timeout=30) == EXIT_NODE_FAILED
    wait_for_sim_line(sim_dir / 'record.jsonl', 'STOP', after=drove, timeout=5)
    output = container.output()
    assert 'raised on purpose' in output and 'failing_node shut down' in output


def test_a_bad_parameter_exits_the_container_with_2(processes):
    container = processes.start('robot_container', [
        ros_executable('havatar_bringup', 'robot_container'), 'camera_node', '--ros-args', '-p', 'width:=1', '--'])
    assert container.wait_exit(timeout=60) == EXIT_BAD_PARAMETER
    assert 'camera_node' in container.output()
