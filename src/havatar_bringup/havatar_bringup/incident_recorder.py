"""The incident recorder (executable and node ``incident_recorder``).

Keeps the last ``keep_seconds`` of the driving topics in memory as they came off the wire
(``cmd_vel`` and the twist_mux sources, the lock, ``wheel_commands``, ``battery``,
``/diagnostics``, ``stream/status``); when the robot stops for a reason other than its
driver's (``incidents.StopDetector``: deadman, firmware watchdog or reset, serial loss,
emergency lock, cloud relay lost, stale commands dropped) it records ``post_seconds`` more
and writes them to ``<directory>/incident-<time>-<reasons>.mcap``, which ``ros2 bag`` and
Foxglove open. The reasons are in the file twice: a metadata record ``havatar_incident``
and a ``std_msgs/String`` (JSON) on ``incident``, which is also published (latched). The
oldest files go when the directory outgrows ``max_total_mb``.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Optional

from ament_index_python.packages import get_package_share_directory
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Bool, String

from havatar_common.diagnostics import OK, WARN, diagnostic_array
from havatar_common.parameters import ParameterTable, declare_parameters
from havatar_common.qos import LATCHED
from havatar_common.spin import spin_node
from havatar_msgs.msg import StreamStatus, WheelCommand

from .incidents import IncidentWindow, Record, RecentMessages, Stop, StopDetector, reasons
from .mcap_file import message_definition, rotate, write_mcap

PARAMETERS: ParameterTable = [
    ('directory', '', "Where incident files go; '' = $STATE_DIRECTORY/incidents under systemd, "
     'else ~/.local/state/havatar/incidents', None),
    ('keep_seconds', 30.0, 'Seconds of messages kept before an incident', (1.0, 600.0)),
    ('post_seconds', 2.0, 'Seconds recorded after the first reason, gathering the reasons that follow '
     'into the same file', (0.0, 30.0)),
    ('moving_window', 3.0, 'A reason counts if the wheels moved within this many seconds (the driver '
     'stopping the robot is not an incident)', (0.1, 60.0)),
    ('max_total_mb', 200, 'The oldest incident files are deleted while the directory holds more (MB)',
     (1, 100000)),
    ('max_buffer_mb', 32, 'Most message bytes held in memory (MB)', (1, 4096)),
    ('lock_topic', 'e_stop', "twist_mux's emergency-stop lock (std_msgs/Bool)", None),
    ('diagnostics_period', 1.0, 'Seconds between /diagnostics messages', (0.1, 60.0)),
]

CMD_QOS = 10


def recorded_topics(lock_topic: str) -> list[tuple[str, Any, Any]]:
    """(topic, type, QoS) of every recorded topic."""
    return [
        ('cmd_vel', Twist, CMD_QOS), ('cmd_vel/web', Twist, CMD_QOS), ('cmd_vel/teleop', Twist, CMD_QOS),
        ('cmd_vel/nav', Twist, CMD_QOS), (lock_topic, Bool, CMD_QOS), ('wheel_commands', WheelCommand, CMD_QOS),
        ('battery', BatteryState, LATCHED), ('/diagnostics', DiagnosticArray, 50),
        ('stream/status', StreamStatus, LATCHED),
    ]


def type_name(msg_type: Any) -> str:
    """``pkg/msg/Type`` of a generated message class."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def default_directory() -> Path:
    state = os.environ.get('STATE_DIRECTORY')
    return (Path(state) if state else Path.home() / '.local' / 'state' / 'havatar') / 'incidents'


class IncidentRecorder(Node):
    """Wires the recorded topics to ``StopDetector`` / ``RecentMessages`` and writes the files."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('incident_recorder', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        self.directory = Path(p['directory']).expanduser() if p['directory'] else default_directory()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_total_bytes = p['max_total_mb'] * 1_000_000
        self.lock_topic = p['lock_topic']
        self.recent = RecentMessages(p['keep_seconds'], p['max_buffer_mb'] * 1_000_000)
        self.detector = StopDetector(p['moving_window'])
        self.window = IncidentWindow(int(p['post_seconds'] * 1e9))
        self.keep_ns = int(p['keep_seconds'] * 1e9)
        topics = recorded_topics(self.lock_topic) + [('incident', String, LATCHED)]
        self.definitions = {type_name(t): message_definition(type_name(t), get_package_share_directory)
                            for _, t, _ in topics}
        for topic, msg_type, qos in topics[:-1]:
            self.create_subscription(msg_type, topic, lambda data, t=topic, m=msg_type: self._on(t, m, data),
                                     qos, raw=True)
        self.incident_pub = self.create_publisher(String, 'incident', LATCHED)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.heard: set[str] = set()
        self.written = 0
        self.last_file = ''
        self.check = self.create_timer(0.1, self._check)  # runs only while an incident gathers its tail
        self.check.cancel()
        self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self.get_logger().info(f"keeping the last {p['keep_seconds']} s; incidents go to {self.directory}")

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def _resolved(self, topic: str) -> str:
        return self.resolve_topic_name(topic)

    def _on(self, topic: str, msg_type: Any, data: bytes) -> None:
        now = self._now()
        self.recent.add(Record(self._resolved(topic), type_name(msg_type), now, bytes(data)))
        self.heard.add(self._resolved(topic))
        stops: list[Stop] = []
        if msg_type is WheelCommand:
            msg = deserialize_message(data, WheelCommand)
            self.detector.wheels(msg.left, msg.right, now)
        elif msg_type is Bool:
            stops = self.detector.lock(self._resolved(topic), deserialize_message(data, Bool).data, now)
        elif msg_type is DiagnosticArray:
            msg = deserialize_message(data, DiagnosticArray)
            stops = self.detector.diagnostics(
                [(s.name, {kv.key: kv.value for kv in s.values}) for s in msg.status], now)
            for stop in self.detector.ignored:
                self.get_logger().info(f'{stop.detail} while still or after the driver stopped: no incident')
        if stops:
            if not self.window.open:
                self.get_logger().warning(f'the robot stopped: {", ".join(s.detail for s in stops)}; '
                                          'recording the incident')
            self.window.add(stops)
            if self.check.is_canceled():
                self.check.reset()

    def _check(self) -> None:
        now = self._now()
        if self.window.due(now):
            self.write(self.window.take(), now)
        if not self.window.open:
            self.check.cancel()

    def write(self, stops: list[Stop], now: int) -> Optional[Path]:
        """Write the incident file; None if it could not be written (logged)."""
        first = stops[0].time_ns
        summary = {'reasons': reasons(stops), 'time_ns': first,
                   'stops': [{'reason': s.reason, 'time_ns': s.time_ns, 'detail': s.detail} for s in stops]}
        note = String(data=json.dumps(summary))
        if self.context.ok():  # not when written at shutdown
            self.incident_pub.publish(note)
        records = self.recent.between(first - self.keep_ns, now)
        records.append(Record(self._resolved('incident'), 'std_msgs/msg/String', first, serialize_message(note)))
        stamp = time.strftime('%Y%m%d-%H%M%S', time.localtime(first / 1e9))
        name = re.sub(r'[^a-z_+-]', '', '+'.join(summary['reasons']))
        path = self.directory / f'incident-{stamp}-{first % 1_000_000_000:09d}-{name}.mcap'
        try:
            write_mcap(path, records, self.definitions, {'havatar_incident': {
                'reasons': ','.join(summary['reasons']), 'time_ns': str(first),
                'details': json.dumps(summary['stops']), 'node': self.get_fully_qualified_name()}})
            deleted = rotate(self.directory, self.max_total_bytes, keep=path)
        except OSError as exc:
            self.get_logger().error(f'could not write {path}: {exc}')
            return None
        self.written += 1
        self.last_file = str(path)
        self.get_logger().warning(f'incident ({", ".join(summary["reasons"])}): {len(records)} messages in {path}'
                                  + (f'; deleted {len(deleted)} old file(s)' if deleted else ''))
        return path

    def _publish_diagnostics(self) -> None:
        """The heartbeat, with what is held and which topics were heard."""
        self.diag_pub.publish(diagnostic_array(
            self, 'recorder', str(self.directory), WARN if self.written else OK,
            f'{self.written} incident(s) recorded' if self.written else 'no incident', {
                'messages_held': len(self.recent), 'bytes_held': self.recent.bytes,
                'heard': ','.join(sorted(self.heard)), 'nodes': ','.join(sorted(self.detector.nodes)),
                'incidents': self.written, 'last_file': self.last_file,
                'gathering': ','.join(reasons(self.window.stops))}))

    def shutdown(self) -> None:
        """Write an incident still gathering its tail."""
        if self.window.open:
            self.write(self.window.take(), self._now())


def main(args: Optional[list[str]] = None) -> None:
    spin_node(IncidentRecorder, 'incident_recorder', args)


if __name__ == '__main__':
    main()
