"""One /diagnostics status of a node, built the same way by every Havatar node."""
from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def diagnostic_array(node: Node, what: str, hardware_id: str, level: bytes, message: str,
                     values: dict[str, Any]) -> DiagnosticArray:
    """A DiagnosticArray stamped now, with one status named ``<node name>: <what>``."""
    status = DiagnosticStatus(name=f'{node.get_name()}: {what}', hardware_id=hardware_id,
                              level=level, message=message,
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg
