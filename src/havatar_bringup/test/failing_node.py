"""A node whose timer raises, for robot_container's failure test (``failing_node:FailingNode``)."""
from __future__ import annotations

from typing import Any

from rclpy.node import Node


class FailingNode(Node):
    """Raises from its timer callback after ``fail_after`` seconds."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('failing_node', **kwargs)
        self.declare_parameter('fail_after', 1.0)
        self.create_timer(self.get_parameter('fail_after').value, self._fail)

    def _fail(self) -> None:
        raise RuntimeError('failing_node: raised on purpose')

    def shutdown(self) -> None:
        self.get_logger().info('failing_node shut down')
