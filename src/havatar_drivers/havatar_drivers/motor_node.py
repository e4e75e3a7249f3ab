"""ROS 2 node driving the ESP32 motor controller from ``cmd_vel`` (executable ``motor_node``).

Subscribes ``cmd_vel`` (``geometry_msgs/Twist``, or ``TwistStamped`` with
``use_stamped``); publishes ``wheel_commands`` (what was sent), ``battery``
(``sensor_msgs/BatteryState`` from v1 telemetry) and ``/diagnostics``. The serial work
happens on the link's own thread; this node only wires parameters and topics to it.
"""
from __future__ import annotations

import math
import queue
import time
from typing import Any, Callable, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import BatteryState

from havatar_common.diagnostics import ERROR, OK, WARN, diagnostic_array
from havatar_common.parameters import ParameterTable, check_choice, declare_parameters
from havatar_common.qos import LATCHED
from havatar_common.spin import spin_node
from havatar_msgs.msg import WheelCommand

from .drive_controller import DriveController
from .esp32.guard import MotorLock
from .esp32.link import LinkStats, SerialLink
from .esp32.protocol import PWM_LIMIT, Ack, Dialect, Reply, Telemetry, parse_dialect
from .kinematics import DriveConfig

PARAMETERS: ParameterTable = [
    ('serial_port', '', "Serial port: a path (/dev/ttyUSB0), a /dev/serial/by-id name "
     "fragment, or '' to scan /dev/ttyUSB*, ttyACM*, ttyAMA*", None),
    ('baud', 115200, 'Serial baud rate of the firmware', (1200, 4000000)),
    ('dialect', 'auto', "Firmware dialect: 'auto' (detect), 'v1' (TB6612FNG+INA219) or "
     "'v2' (ESP32_CRAWLER)", None),
    ('cmd_timeout', 0.5, 'Stop the motors when no cmd_vel arrived for this long (s)', (0.05, 5.0)),
    ('use_stamped', False, 'Subscribe geometry_msgs/TwistStamped instead of Twist', None),
    ('track_width', 0.20, 'Distance between the tracks (m)', (0.02, 2.0)),
    ('max_wheel_speed', 0.5, 'Track speed at PWM 255 (m/s)', (0.01, 10.0)),
    ('max_linear', 0.5, 'Largest forward/backward speed obeyed (m/s)', (0.0, 10.0)),
    ('max_angular', 2.5, 'Largest turn rate obeyed (rad/s)', (0.0, 20.0)),
    ('max_linear_accel', 1.0, 'Largest linear acceleration while speeding up (m/s^2); '
     '0 = unlimited. Slowing down is never limited', (0.0, 100.0)),
    ('max_angular_accel', 6.0, 'Largest angular acceleration while speeding up (rad/s^2); '
     '0 = unlimited', (0.0, 1000.0)),
    ('invert_left', False, 'Reverse the left motor', None),
    ('invert_right', False, 'Reverse the right motor', None),
    ('trim_left', 1.0, 'Scale of the left command, to straighten a drifting robot', (0.5, 1.5)),
    ('trim_right', 1.0, 'Scale of the right command', (0.5, 1.5)),
    ('min_pwm', 0, 'Smallest PWM that moves the motors (deadband); 0 = none', (0, PWM_LIMIT)),
    ('reconnect_period', 1.0, 'Seconds between attempts to reopen a lost port', (0.1, 60.0)),
    ('detect_timeout', 4.0, 'Seconds to identify the firmware before using safe timing',
     (0.5, 30.0)),
    ('battery_cells', 2, 'Li-ion cells in series, for the battery percentage (v1)', (1, 12)),
    ('frame_id', 'base_link', 'frame_id of published headers', None),
    ('diagnostics_period', 1.0, 'Seconds between /diagnostics messages', (0.1, 60.0)),
    ('lock_file', '', "Lock file held while running, naming the open port, for motor_guard "
     "to write STOP the moment this node dies (v1 firmware keeps its last PWM); '' = none", None),
]


CELL_EMPTY_V, CELL_FULL_V = 3.3, 4.2  # a Li-ion cell's voltage range in use


class InlineEvents:
    """Takes the link thread's events like a queue but handles each at once on that thread."""

    def __init__(self, handle: Callable[[tuple[str, Any, float]], None]) -> None:
        self.put = handle


def battery_percentage(voltage: float, cells: int) -> float:
    """Rough Li-ion state of charge (0..1) from the pack voltage."""
    per_cell = voltage / cells
    return max(0.0, min(1.0, (per_cell - CELL_EMPTY_V) / (CELL_FULL_V - CELL_EMPTY_V)))


class MotorNode(Node):
    """Wires ``cmd_vel`` and the published status to a ``SerialLink``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('motor_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        dialect = parse_dialect(check_choice('dialect', p['dialect'], ('auto', 'v1', 'v2')))
        self.params = p
        config = DriveConfig(
            track_width=p['track_width'], max_wheel_speed=p['max_wheel_speed'],
            max_linear=p['max_linear'], max_angular=p['max_angular'],
            max_linear_accel=p['max_linear_accel'], max_angular_accel=p['max_angular_accel'],
            invert_left=p['invert_left'], invert_right=p['invert_right'],
            trim_left=p['trim_left'], trim_right=p['trim_right'], min_pwm=p['min_pwm'])
        self.controller = DriveController(config, p['cmd_timeout'])
        self._events: queue.SimpleQueue[tuple[str, Any, float]] = queue.SimpleQueue()
        # held from before the port is opened until after STOP was sent on shutdown
        self.lock = self._take_lock(p['lock_file']) if p['lock_file'] else None
        self.link = SerialLink(
            p['serial_port'], self.controller, baud=p['baud'], dialect=dialect,
            reconnect_period=p['reconnect_period'], detect_timeout=p['detect_timeout'],
            on_reply=lambda reply: self._events.put(('reply', reply, time.time())),
            on_sent=lambda line, _t: self._events.put(('sent', line, time.time())),
            on_open=self.lock.set_port if self.lock else lambda path: None,
            logger=self.get_logger())

        self.wheel_pub = self.create_publisher(WheelCommand, 'wheel_commands', 10)
        self.battery_pub = self.create_publisher(BatteryState, 'battery', LATCHED)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        if p['use_stamped']:
            self.create_subscription(TwistStamped, 'cmd_vel',
                                     lambda m: self._on_twist(m.twist), 10)
        else:
            self.create_subscription(Twist, 'cmd_vel', self._on_twist, 10)
        # published from the link thread as they happen (publishing is thread-safe): the
        # executor no longer wakes 50 times a second to poll for them
        self._events = InlineEvents(self._dispatch)  # type: ignore[assignment]
        self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self.link.start()
        self.get_logger().info(
            f"driving the ESP32 on {p['serial_port'] or 'the first port found'} "
            f"(dialect {p['dialect']}, cmd_timeout {p['cmd_timeout']} s)")

    def _take_lock(self, path: str) -> Optional[MotorLock]:
        try:
            return MotorLock(path)
        except OSError as exc:  # drive anyway: unguarded beats not moving at all
            self.get_logger().error(f'cannot use lock_file {path}: {exc}; motor_guard cannot stop '
                                    'the motors if this node dies')
            return None

    def _on_twist(self, msg: Twist) -> None:
        if not (math.isfinite(msg.linear.x) and math.isfinite(msg.angular.z)):
            self.get_logger().warning('ignoring cmd_vel with NaN/inf; stopping',
                                      throttle_duration_sec=5.0)
        self.controller.command(msg.linear.x, msg.angular.z, time.monotonic())

    def _dispatch(self, event: tuple[str, Any, float]) -> None:
        """Publish a line sent or a reply (on the link thread, or on close)."""
        kind, item, stamp = event
        try:
            if kind == 'sent':
                self._publish_sent(item, stamp)
            else:
                self._on_reply(item, stamp)
        except Exception as exc:  # noqa: BLE001 - shutting down: the context may be gone already
            self.get_logger().debug(f'could not publish {kind}: {exc}')

    def _stamp(self, wall_time: float) -> Any:
        return rclpy.time.Time(nanoseconds=int(wall_time * 1e9)).to_msg()

    def _publish_sent(self, line: bytes, stamp: float) -> None:
        words = line.split()
        if words[0] == b'PWM':
            left, right = int(words[1]), int(words[2])
        elif words[0] == b'STOP':
            left = right = 0
        else:
            return  # probes are not wheel commands
        msg = WheelCommand(left=left, right=right)
        msg.header.stamp = self._stamp(stamp)
        msg.header.frame_id = self.params['frame_id']
        self.wheel_pub.publish(msg)

    def _on_reply(self, reply: Reply, stamp: float) -> None:
        voltage = reply.voltage if isinstance(reply, (Telemetry, Ack)) else None
        if voltage is None:
            return
        msg = BatteryState()
        msg.header.stamp = self._stamp(stamp)
        msg.header.frame_id = self.params['frame_id']
        msg.voltage = float(voltage)
        msg.current = (-reply.current_ma / 1000.0 if isinstance(reply, Telemetry)
                       and reply.current_ma is not None else math.nan)
        msg.percentage = battery_percentage(voltage, self.params['battery_cells'])
        msg.temperature = msg.charge = msg.capacity = msg.design_capacity = math.nan
        msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
        msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LION
        msg.present = True
        self.battery_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        s: LinkStats = self.link.stats
        if s.state == 'connected' and s.dialect is not None:
            level, message = OK, f'connected ({s.dialect.value})'
        elif s.state in ('connected', 'detecting'):
            level, message = WARN, f'{s.state}, dialect unknown'
        else:
            level, message = ERROR, s.last_error or s.state
        values = {
            'state': s.state, 'port': s.port,
            'dialect': s.dialect.value if isinstance(s.dialect, Dialect) else 'unknown',
            'last_reply': s.last_reply,
            'last_reply_age_s': f'{time.monotonic() - s.last_reply_time:.2f}' if s.last_reply_time else 'never',
            'lines_sent': s.lines_sent, 'connects': s.connects, 'serial_errors': s.serial_errors,
            'firmware_errors': s.firmware_errors, 'unparsed_replies': s.unparsed,
            'firmware_resets': s.resets, 'firmware_emergency_stops': s.emergencies,
            'deadman_stops': self.controller.deadman_stops, 'last_error': s.last_error,
        }
        self.diag_pub.publish(diagnostic_array(self, 'ESP32 link', s.port or 'none', level,
                                               message, values))

    def shutdown(self) -> None:
        """Stop the motors and close the port."""
        self.link.close()
        if self.lock is not None:
            self.lock.close()


def main(args: Optional[list[str]] = None) -> None:
    spin_node(MotorNode, 'motor_node', args, events=True)  # half the CPU, a shorter p99


if __name__ == '__main__':
    main()
