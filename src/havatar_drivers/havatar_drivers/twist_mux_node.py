"""A twist_mux for machines without it (executable ``twist_mux``, node ``twist_mux``).

Reads the same parameters as ros-teleop/twist_mux (``topics.<name>.topic|timeout|priority``
for ``geometry_msgs/Twist`` sources, ``locks.<name>.topic|timeout|priority`` for
``std_msgs/Bool`` locks) and publishes the winner on ``cmd_vel_out``, so the launch file
runs either with the same ``/**/twist_mux`` section of robot.yaml. The rules are
``twist_arbiter``'s. Sources or locks given in the parameters replace the defaults below
(keyboard teleop over the web over autonomy; an emergency-stop lock).
"""
from __future__ import annotations

import math
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from std_msgs.msg import Bool

from havatar_common.diagnostics import OK, WARN, diagnostic_array
from havatar_common.parameters import ParameterTable
from havatar_common.spin import spin_node

from .twist_arbiter import TwistArbiter, parse_inputs

DIAGNOSTICS_PERIOD_S = 1.0  # as twist_mux's
KINDS = ('topics', 'locks')


def _entry(kind: str, name: str, topic: str, timeout: float, priority: int, what: str) -> ParameterTable:
    return [
        (f'{kind}.{name}.topic', topic, f'{what}: topic', None),
        (f'{kind}.{name}.timeout', timeout, f'{what}: seconds after its last message it stops counting'
         + (' (0 = it need not repeat itself)' if kind == 'locks' else ''), None),
        (f'{kind}.{name}.priority', priority, f'{what}: priority [0 .. 255], higher wins', None),
    ]


PARAMETERS: ParameterTable = [
    ('use_stamped', False, 'Sources and cmd_vel_out carry geometry_msgs/TwistStamped (the motor '
     "node's use_stamped must agree)", None),
    *_entry('topics', 'teleop', 'cmd_vel/teleop', 0.5, 100, 'Keyboard/joystick teleop (Twist)'),
    *_entry('topics', 'web', 'cmd_vel/web', 0.5, 50, "The browser's driving, from relay_node (Twist)"),
    *_entry('topics', 'autonomy', 'cmd_vel/nav', 0.5, 10, 'Navigation / autonomy (Twist)'),
    *_entry('locks', 'e_stop', 'e_stop', 0.0, 255, 'Emergency stop (std_msgs/Bool, true = stopped)'),
]


def twist(linear: float, angular: float) -> Twist:
    msg = Twist()
    msg.linear.x, msg.angular.z = linear, angular
    return msg


class TwistMuxNode(Node):
    """Subscribes every source and lock; publishes what the arbiter answers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('twist_mux', automatically_declare_parameters_from_overrides=True,
                         allow_undeclared_parameters=True, **kwargs)
        given = {kind: self.get_parameters_by_prefix(kind) for kind in KINDS}
        for name, default, description, _ in PARAMETERS:
            kind = name.split('.')[0]
            if not self.has_parameter(name) and not given.get(kind):  # sources given replace the defaults
                self.declare_parameter(name, default, ParameterDescriptor(description=description,
                                                                          read_only=True))
        flat = {f'{kind}.{key}': param.value for kind in KINDS
                for key, param in self.get_parameters_by_prefix(kind).items()}
        self.arbiter = TwistArbiter(parse_inputs('topics', flat), parse_inputs('locks', flat))
        stamped = self.get_parameter('use_stamped').value
        if not isinstance(stamped, bool):
            raise ValueError(f'parameter use_stamped={stamped!r} must be true or false')
        self.msg_type = TwistStamped if stamped else Twist
        self.out = self.create_publisher(self.msg_type, 'cmd_vel_out', 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        for source in self.arbiter.topics.values():
            self.create_subscription(self.msg_type, source.topic,
                                     lambda m, n=source.name: self._on_twist(n, m), 10)
        for lock in self.arbiter.locks.values():
            self.create_subscription(Bool, lock.topic, lambda m, n=lock.name: self._on_lock(n, m), 10)
        timeouts = [i.timeout for i in [*self.arbiter.topics.values(), *self.arbiter.locks.values()] if i.timeout]
        # runs only while a source drives: an idle mux costs nothing
        self.tick = self.create_timer(min(0.05, max(0.01, min(timeouts) / 10)), self._tick)
        self.tick.cancel()
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.get_logger().info('muxing ' + ', '.join(
            f'{i.name} ({i.topic}, priority {i.priority}, timeout {i.timeout} s)'
            for i in sorted(self.arbiter.topics.values(), key=lambda i: -i.priority))
            + '; locks ' + (', '.join(f'{i.name} ({i.topic}, priority {i.priority})'
                                      for i in self.arbiter.locks.values()) or 'none'))

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _send(self, out: Optional[tuple[float, float]]) -> None:
        if out is not None:
            msg = twist(*out)
            if self.msg_type is TwistStamped:
                msg = TwistStamped(twist=msg)
                msg.header.stamp = self.get_clock().now().to_msg()
            self.out.publish(msg)

    def _on_twist(self, name: str, message: Any) -> None:
        msg = message.twist if isinstance(message, TwistStamped) else message
        if not (math.isfinite(msg.linear.x) and math.isfinite(msg.angular.z)):
            self.get_logger().warning(f'{name}: ignoring a twist with NaN/inf', throttle_duration_sec=5.0)
            return
        out = self.arbiter.twist(name, (msg.linear.x, msg.angular.z), self._now())
        if out is not None and self.arbiter.active == name:
            self.out.publish(message)  # as it came (all six components, its stamp)
            if self.tick.is_canceled():
                self.tick.reset()
        else:
            self._send(out)

    def _on_lock(self, name: str, msg: Bool) -> None:
        was = self.arbiter.engaged_locks(self._now())
        self._send(self.arbiter.lock(name, msg.data, self._now()))
        if msg.data and name not in was:
            self.get_logger().warning(f'lock {name} engaged: sources below priority '
                                      f'{self.arbiter.locks[name].priority} are stopped')

    def _tick(self) -> None:
        active = self.arbiter.active
        out = self.arbiter.update(self._now())
        if out is not None:
            self.get_logger().info(f'{active} stopped counting (timeout or lock): zero twist sent',
                                   throttle_duration_sec=5.0)
        self._send(out)
        if self.arbiter.active is None:
            self.tick.cancel()

    def _publish_diagnostics(self) -> None:
        now = self._now()
        locks = self.arbiter.engaged_locks(now)
        winner = self.arbiter.winner(now)
        message = (f'locked by {", ".join(locks)}' if locks else
                   f'{winner} drives' if winner else 'idle')
        self.diag_pub.publish(diagnostic_array(self, 'arbitration', 'cmd_vel', WARN if locks else OK, message, {
            'active': winner or 'none', 'lock_priority': self.arbiter.lock_priority(now),
            'engaged_locks': ','.join(locks)}))

    def shutdown(self) -> None:
        """Nothing to release: the motor node's deadman stops the base."""


def main(args: Optional[list[str]] = None) -> None:
    spin_node(TwistMuxNode, 'twist_mux', args)


if __name__ == '__main__':
    main()
