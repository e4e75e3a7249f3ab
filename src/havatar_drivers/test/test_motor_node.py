"""The real motor_node against the real ESP32 simulator, over DDS and a pseudo-terminal."""
from __future__ import annotations

import signal
import threading
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from sensor_msgs.msg import BatteryState


DIALECTS = ['v1', 'v2']
# Default kinematics: max_wheel_speed 0.5 m/s at PWM 255, track 0.2 m.
FORWARD = (0.25, 0.0, 'PWM 128 128')   # 0.25 / 0.5 * 255 = 127.5
SPIN_LEFT = (0.0, 2.0, 'PWM -102 102')  # 2.0 * 0.1 / 0.5 * 255 = 102


def twist(linear: float, angular: float) -> Twist:
    msg = Twist()
    msg.linear.x, msg.angular.z = linear, angular
    return msg


class Driver:
    """Publishes cmd_vel at a fixed rate from a thread until stopped."""

    def __init__(self, ros_node, rate_hz: float = 20.0, stamped: bool = False) -> None:
        self.msg_type = TwistStamped if stamped else Twist
        self.pub = ros_node.node.create_publisher(self.msg_type, 'cmd_vel', 10)
        self.rate_hz = rate_hz
        self.command = (0.0, 0.0)
        self.last_publish = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = twist(*self.command)
            if self.msg_type is TwistStamped:
                msg = TwistStamped(twist=msg)
            self.pub.publish(msg)
            self.last_publish = time.time()
            self._stop.wait(1.0 / self.rate_hz)

    def start(self, linear: float, angular: float) -> 'Driver':
        self.command = (linear, angular)
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stop publishing; return the wall time of the last publish."""
        self._stop.set()
        self._thread.join()
        return self.last_publish


@pytest.mark.parametrize('dialect', DIALECTS)
@pytest.mark.parametrize('command', [FORWARD, SPIN_LEFT], ids=['forward', 'spin_left'])
def test_twist_becomes_the_right_pwm_line(dialect, command, start_sim, start_motor_node, ros_node):
    sim = start_sim(dialect)
    start_motor_node(sim.port)
    ros_node.wait_for_publishers('wheel_commands')
    driver = Driver(ros_node).start(command[0], command[1])
    try:
        sim.wait_for_line(lambda line: line == command[2], timeout=15)
        state = sim.control.state()
    finally:
        driver.stop()
    ramp = [line for _, line in sim.commands() if line.startswith('PWM')]
    assert ramp[-1] == command[2]
    speeds = [abs(int(line.split()[2])) for line in ramp]
    assert speeds == sorted(speeds), 'speeding up within the acceleration limit'
    assert (state['left'], state['right']) == tuple(int(w) for w in command[2].split()[1:])


@pytest.mark.parametrize('dialect', DIALECTS)
def test_motor_stops_when_commands_stop(dialect, start_sim, start_motor_node, ros_node):
    sim = start_sim(dialect)
    start_motor_node(sim.port, cmd_timeout=0.5)
    ros_node.wait_for_publishers('wheel_commands')
    driver = Driver(ros_node).start(*FORWARD[:2])
    try:
        sim.wait_for_line(lambda line: line.startswith('PWM'), timeout=15)
        time.sleep(0.5)  # keep driving for a while
    finally:
        last_publish = driver.stop()

    stop_time, _ = sim.wait_for_line(lambda line: line == 'STOP', after=last_publish, timeout=5)

    assert stop_time - last_publish <= 0.5 + 0.1
    assert sim.control.state()['left'] == 0


def test_twist_stamped_is_accepted_by_parameter(start_sim, start_motor_node, ros_node):
    sim = start_sim('v1')
    start_motor_node(sim.port, use_stamped=True)
    ros_node.wait_for_publishers('wheel_commands')
    driver = Driver(ros_node, stamped=True).start(*FORWARD[:2])
    try:
        sim.wait_for_line(lambda line: line == FORWARD[2], timeout=15)
    finally:
        driver.stop()


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_motor_stops_on_node_shutdown(sig, start_sim, start_motor_node, ros_node):
    sim = start_sim('v1')
    node = start_motor_node(sim.port, cmd_timeout=5.0)
    ros_node.wait_for_publishers('wheel_commands')
    driver = Driver(ros_node).start(*FORWARD[:2])
    try:
        sim.wait_for_line(lambda line: line.startswith('PWM'), timeout=15)
        before = time.time()
        node.signal(sig)
        assert node.wait_exit(timeout=10) == 0
    finally:
        driver.stop()
    sim.wait_for_line(lambda line: line == 'STOP', after=before, timeout=2)
    assert sim.control.state()['left'] == 0


@pytest.mark.parametrize('dialect', DIALECTS)
def test_stops_and_reconnects_across_an_unplug(dialect, start_sim, start_motor_node, ros_node):
    sim = start_sim(dialect)
    start_motor_node(sim.port, reconnect_period=0.2, diagnostics_period=0.2)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    ros_node.wait_for_publishers('wheel_commands')
    driver = Driver(ros_node).start(*FORWARD[:2])
    try:
        sim.wait_for_line(lambda line: line == FORWARD[2], timeout=15)
        sim.control.send('unplug 1.5')
        unplugged = time.time()
        diagnostics.wait_for(
            lambda m: any(s.level == s.ERROR and dict((kv.key, kv.value) for kv in s.values)
                          .get('serial_errors') == '1' for s in m.status),
            timeout=5, what='diagnostics reporting the lost link')
        # the node reopens the returning port by itself and follows the operator again
        drive_time, _ = sim.wait_for_line(lambda line: line == FORWARD[2], after=unplugged, timeout=15)
    finally:
        driver.stop()
    after_replug = [line for t, line in sim.commands() if unplugged <= t <= drive_time]
    if dialect == 'v1':
        # v1 printed its boot line before the node reopened the port, so the node does not
        # know the motors' state and stops them first (a self-powered v1 board keeps its
        # last speed across a USB glitch)
        assert after_replug[0] == 'STOP'
    else:
        # v2 rebooting announces its stopped motors: the node resumes at once
        assert after_replug[0].startswith('PWM')


@pytest.mark.parametrize('dialect', DIALECTS)
def test_garbage_and_malformed_replies_never_crash_the_node(dialect, start_sim, start_motor_node,
                                                             ros_node):
    sim = start_sim(dialect)
    node = start_motor_node(sim.port)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    ros_node.wait_for_publishers('wheel_commands')
    driver = Driver(ros_node).start(*FORWARD[:2])
    try:
        sim.wait_for_line(lambda line: line.startswith('PWM'), timeout=15)
        for fault in ('garbage 3000', 'drop 5', 'garbage 17', 'hang 0.5', 'garbage 500'):
            sim.control.send(fault)
        diagnostics.wait_for(
            lambda m: any(kv.key == 'unparsed_replies' and int(kv.value) > 0
                          for s in m.status for kv in s.values),
            timeout=10, what='diagnostics counting unparsed replies')
        driver.command = SPIN_LEFT[:2]
        sim.wait_for_line(lambda line: line == SPIN_LEFT[2], timeout=10)
    finally:
        driver.stop()
    assert node.running()


def test_v2_rate_limit_is_respected_at_50_hz_input(start_sim, start_motor_node, ros_node):
    sim = start_sim('v2')
    start_motor_node(sim.port, dialect='v2', max_linear_accel=0.0)
    ros_node.wait_for_publishers('wheel_commands')
    driver = Driver(ros_node, rate_hz=50.0)
    driver.start(0.1, 0.0)
    try:
        sim.wait_for_line(lambda line: line.startswith('PWM'), timeout=15)
        start = time.time()
        # a new speed every 20 ms for 3 s: the firmware can take one line per ~50 ms
        for i in range(150):
            driver.command = (0.1 + 0.002 * (i % 100), 0.0)
            time.sleep(0.02)
        final_linear = 0.4
        driver.command = (final_linear, 0.0)
        changed = time.time()
        _, line = sim.wait_for_line(lambda line: line == 'PWM 204 204', after=changed, timeout=5)
        arrived = sim.wait_for_line(lambda line: line == 'PWM 204 204', after=changed)[0]
    finally:
        driver.stop()
    lines = [(t, line) for t, line in sim.commands() if start <= t <= changed]
    gaps = [b[0] - a[0] for a, b in zip(lines, lines[1:])]
    assert len(lines) < 3.0 / 0.05 + 2, 'more lines than the firmware can take'
    assert min(gaps) >= 0.045, 'lines closer together than the firmware blocks'
    assert arrived - changed < 0.3, 'the newest command waited behind a queue'


def test_battery_state_from_v1_telemetry(start_sim, start_motor_node, ros_node):
    sim = start_sim('v1')
    start_motor_node(sim.port)
    battery = ros_node.subscribe(BatteryState, 'battery')
    sim.control.send('battery 7.4')
    msg = battery.wait_for(lambda m: abs(m.voltage - 7.4) < 0.05, timeout=10,
                           what='BatteryState near 7.4 V')
    assert msg.present and 0.0 < msg.percentage < 1.0


@pytest.mark.parametrize('dialect', DIALECTS)
def test_dialect_is_detected_and_reported(dialect, start_sim, start_motor_node, ros_node):
    sim = start_sim(dialect)
    start_motor_node(sim.port)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    diagnostics.wait_for(
        lambda m: any(kv.key == 'dialect' and kv.value == dialect
                      for s in m.status for kv in s.values),
        timeout=15, what=f'diagnostics reporting dialect {dialect}')


def test_out_of_range_parameter_fails_at_start_up(processes):
    from havatar_testing import ros_executable
    node = processes.start('motor_node', [ros_executable('havatar_drivers', 'motor_node'),
                                          '--ros-args', '-p', 'cmd_timeout:=60.0'])
    assert node.wait_exit(timeout=20) != 0
    assert 'cmd_timeout' in node.output()


def test_parameters_are_read_only_while_running(start_sim, start_motor_node, ros_node):
    """The node applies no change while running, so the parameter service refuses them."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    sim = start_sim('v1')
    start_motor_node(sim.port)
    client = ros_node.node.create_client(SetParameters, '/motor_node/set_parameters')
    request = SetParameters.Request(parameters=[Parameter(
        name='cmd_timeout', value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                 double_value=1.0))])
    result, = ros_node.call(client, request, timeout=15).results
    assert not result.successful
    assert 'read-only' in result.reason
