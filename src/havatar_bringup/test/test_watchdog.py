"""The watchdog's core: heartbeats, hung and stopped nodes, STOP written to a held port."""
from __future__ import annotations

import os
import signal
import subprocess
import time
import tty

from havatar_bringup.graph import GraphArgs, NodeEntry
from havatar_bringup.processes import ProcessManager
from havatar_bringup.run_robot import Robot
from havatar_bringup.watchdog import Watchdog, process_stopped, stop_motors
from havatar_testing import wait_until


def test_a_node_is_hung_only_after_its_first_heartbeat_and_the_timeout():
    dog = Watchdog(hang_timeout=3.0)
    dog.started('camera_node', wall_time=100.0)
    assert dog.silent('camera_node', now=50.0) is None, 'not armed before its first status'
    dog.beat('camera_node', now=10.0, sent=101.0)
    assert dog.silent('camera_node', now=12.9) is None
    assert dog.silent('camera_node', now=13.5) == 3.5


def test_a_heartbeat_sent_before_the_restart_does_not_arm_the_new_process():
    dog = Watchdog(hang_timeout=3.0)
    dog.started('motor_node', wall_time=100.0)
    dog.beat('motor_node', now=1.0, sent=101.0)
    dog.started('motor_node', wall_time=200.0)
    dog.beat('motor_node', now=2.0, sent=199.9)  # the old process's, still in flight
    assert dog.silent('motor_node', now=60.0) is None
    dog.beat('motor_node', now=3.0, sent=200.5)
    assert dog.silent('motor_node', now=6.5) == 3.5


def test_restarts_are_counted_and_summarised_latest_first():
    dog = Watchdog()
    assert dog.summary() == ('no restarts', {})
    dog.restarted('motor_node', 'exited (-9)', 1000.0)
    dog.restarted('camera_node', 'stopped', 2000.0)
    assert dog.restarted('motor_node', 'stopped', 1500.0).count == 2
    message, values = dog.summary()
    assert message.startswith('camera_node restarted at ') and message.endswith('(stopped)')
    assert values['motor_node'].startswith('2 restart(s), last at ')
    assert values['motor_node'].endswith(': stopped')


def test_a_stopped_process_is_seen_in_proc():
    sleeper = subprocess.Popen(['sleep', '60'])
    try:
        assert not process_stopped(sleeper.pid)
        sleeper.send_signal(signal.SIGSTOP)
        wait_until(lambda: process_stopped(sleeper.pid), 5, 'state T')
        sleeper.send_signal(signal.SIGCONT)
        wait_until(lambda: not process_stopped(sleeper.pid), 5, 'running again')
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not process_stopped(sleeper.pid), 'a process that is gone is not stopped'


def test_stop_is_written_to_a_port_another_process_holds_open():
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        holder = os.open(os.ttyname(slave), os.O_RDWR | os.O_NOCTTY)  # the hung motor node's
        assert stop_motors(os.ttyname(slave)) is None
        assert os.read(master, 100) == b'STOP\n'
        os.close(holder)
    finally:
        os.close(master)
        os.close(slave)
    assert stop_motors('/nonexistent/ttyUSB0').startswith('cannot open /nonexistent/ttyUSB0')


def test_run_robot_kills_a_silent_motor_node_writes_stop_and_respawns_it(tmp_path, monkeypatch):
    master, slave = os.openpty()
    tty.setraw(slave)
    processes = ProcessManager(tmp_path, dict(os.environ))
    restarts: list[str] = []
    robot = Robot(GraphArgs(), processes, Watchdog(hang_timeout=5.0), on_restart=lambda: restarts.append('x'))
    entry = NodeEntry('havatar_drivers', 'motor_node', 'motor_node', respawn=True, respawn_delay=0.2,
                      parameters=('robot.yaml', {'serial_port': os.ttyname(slave)}))

    def start(entry: NodeEntry):  # a process that stands in for the node
        process = processes.start(entry.name, ['sleep', '60'])
        robot.running[entry.name] = (entry, process)
        robot.watchdog.started(entry.name, time.time())
        return process
    monkeypatch.setattr(robot, 'start', start)
    try:
        first = robot.start(entry)
        robot.watchdog.beat('motor_node', now=100.0)
        assert robot.check(104.0) is None and first.running()
        assert robot.check(105.5) is None  # silent for 5.5 s: killed, STOP written, respawn due
        assert not first.running()
        assert os.read(master, 100) == b'STOP\n', 'the configured port, as none was reported'
        assert robot.running['motor_node'][1] is first and restarts == []
        assert robot.check(105.8) is None
        second = robot.running['motor_node'][1]
        assert second is not first and second.running() and restarts == ['x']
        assert robot.watchdog.restarts['motor_node'].reason == 'sent no heartbeat for 5.5 s'
    finally:
        processes.stop_all()
        os.close(master)
        os.close(slave)


def test_run_robot_restarts_a_container_when_one_of_its_nodes_is_silent_and_writes_stop(tmp_path):
    master, slave = os.openpty()
    tty.setraw(slave)
    processes = ProcessManager(tmp_path, dict(os.environ))
    robot = Robot(GraphArgs(), processes, Watchdog(hang_timeout=5.0))
    members = (NodeEntry('havatar_drivers', 'motor_node', 'motor_node',
                         parameters=('robot.yaml', {'serial_port': os.ttyname(slave)})),
               NodeEntry('havatar_relay', 'relay_node', 'relay_node'))
    entry = NodeEntry('havatar_bringup', 'robot_container', 'robot_container', ros=False, respawn=True,
                      respawn_delay=0.2, members=members)
    process = processes.start(entry.name, ['sleep', '60'])  # stands in for the container
    robot.running[entry.name] = (entry, process)
    try:
        assert robot.process_of('relay_node') is process and robot.process_of('motor_node') is process
        robot.watchdog.beat('motor_node', now=100.0)
        robot.watchdog.beat('relay_node', now=101.0)
        assert robot.check(105.5) is None  # the relay node inside it is fine, the motor node silent
        assert not process.running()
        assert robot.down['robot_container'] == 'sent no heartbeat for 5.5 s (motor_node)'
        assert os.read(master, 100) == b'STOP\n', 'its motor node is down: STOP at once'
    finally:
        processes.stop_all()
        os.close(master)
        os.close(slave)
