"""The twist_mux node between real publishers and the real motor node (DDS, the ESP32 simulator)."""
from __future__ import annotations

import time

import pytest
from geometry_msgs.msg import Twist
from std_msgs.msg import Bool

from havatar_bringup.graph import parameter_arguments
from havatar_bringup.processes import wait_until
from havatar_testing.ros import TwistSource, ros_executable

TELEOP, WEB = (0.0, 1.0), (0.25, 0.0)
WEB_PWM = 'PWM 128 128'  # 0.25 m/s at 0.5 m/s per PWM 255


@pytest.fixture
def start_mux(processes):
    def start(**params: object):
        node = processes.start('twist_mux', [
            ros_executable('havatar_drivers', 'twist_mux'), '--ros-args', *parameter_arguments(params),
            '-r', 'cmd_vel_out:=cmd_vel'])
        node.wait_for_output(r'muxing ', timeout=20)
        return node
    return start


def twists(log, since: float) -> list[tuple[float, tuple[float, float]]]:
    return [(t, (m.linear.x, m.angular.z)) for t, m in log.timed if t >= since]


def test_teleop_wins_while_it_talks_and_the_web_resumes_after_its_timeout(start_mux, ros_node):
    start_mux()
    out = ros_node.subscribe(Twist, 'cmd_vel')
    web = TwistSource(ros_node, 'cmd_vel/web', WEB)
    teleop = None
    try:
        out.wait_for(lambda m: m.linear.x == WEB[0], timeout=15, what='the web driving')
        teleop = TwistSource(ros_node, 'cmd_vel/teleop', TELEOP)
        out.wait_for(lambda m: m.angular.z == TELEOP[1], timeout=5, what='teleop driving')
        took_over = time.monotonic()
        time.sleep(1.0)  # both talk: only teleop may come out
        last_teleop = teleop.stop()
        resumed = time.monotonic()
        wait_until(lambda: any(tw == WEB for t, tw in twists(out, resumed)), 5, 'the web driving again')
    finally:
        web.stop()
        if teleop is not None:
            teleop.stop()
    during = [tw for t, tw in twists(out, took_over + 0.2) if t <= last_teleop]
    assert during and all(tw == TELEOP for tw in during), 'the web came through while teleop talked'
    after = twists(out, last_teleop + 0.01)
    first_web = next(t for t, tw in after if tw == WEB)
    assert first_web - last_teleop >= 0.5 - 0.05, 'the web came back before the teleop timeout'
    assert first_web - last_teleop < 0.5 + 1.0
    # a zero when teleop's timeout is seen before the web's next message, none when that message
    # is what finds teleop expired
    assert [tw for t, tw in after if t < first_web and tw != TELEOP] in ([], [(0.0, 0.0)])


def test_a_silent_source_is_not_repeated_but_stopped_once(start_mux, ros_node):
    start_mux()
    out = ros_node.subscribe(Twist, 'cmd_vel')
    web = TwistSource(ros_node, 'cmd_vel/web', WEB)
    try:
        out.wait_for(lambda m: m.linear.x == WEB[0], timeout=15, what='the web driving')
    finally:
        last = web.stop()
    wait_until(lambda: any(tw == (0.0, 0.0) for _, tw in twists(out, last)), 3, 'the zero after the timeout')
    time.sleep(0.5)  # observe that nothing else comes
    after = twists(out, last)
    zero = next(i for i, (_, tw) in enumerate(after) if tw == (0.0, 0.0))
    assert all(tw == WEB for _, tw in after[:zero]), 'only what was in flight before the zero'
    assert after[zero][0] - last >= 0.5 - 0.05, 'the zero once the timeout passed'
    assert after[zero + 1:] == [], 'nothing after the zero: no stale twist repeated'


def test_a_lock_stops_the_motors_at_once_whoever_drives(start_mux, start_sim, start_motor_node, ros_node):
    sim = start_sim('v1')
    start_motor_node(sim.port, cmd_timeout=2.0, max_linear_accel=0.0)
    start_mux()
    lock = ros_node.node.create_publisher(Bool, 'e_stop', 10)
    ros_node.wait_for_subscribers(lock)
    teleop = TwistSource(ros_node, 'cmd_vel/teleop', WEB)
    web = TwistSource(ros_node, 'cmd_vel/web', TELEOP)
    try:
        sim.wait_for_line(lambda line: line == WEB_PWM, timeout=15)
        locked = time.time()
        lock.publish(Bool(data=True))
        stop_time, _ = sim.wait_for_line(lambda line: line in ('STOP', 'PWM 0 0'), after=locked, timeout=5)
        time.sleep(1.0)  # both sources keep talking while locked
        moved = [line for t, line in sim.commands() if t > stop_time and line not in ('STOP', 'PWM 0 0')]
        lock.publish(Bool(data=False))
        released = time.time()
        sim.wait_for_line(lambda line: line == WEB_PWM, after=released, timeout=5)
    finally:
        teleop.stop()
        web.stop()
    assert stop_time - locked < 0.3, 'the lock stops at once, not after the 2 s deadman'
    assert moved == [], 'a command passed the lock'
