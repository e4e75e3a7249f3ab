"""A node measuring the image hop from camera_node, for container_benchmark.py (``image_hop:ImageHop``).

Loaded by robot_container beside camera_node (the same process) or alone (camera_node in a
process of its own); prints ``hop: {json}`` with receive time - capture stamp once it has
measured ``seconds``.
"""
from __future__ import annotations

import json
import statistics
import time
from typing import Any

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image


class ImageHop(Node):
    """Receives ``camera/image_raw`` and reports its latency figures once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('image_hop', **kwargs)
        self.seconds = self.declare_parameter('seconds', 10.0).value
        self.latencies: list[float] = []
        self.started = 0.0
        self.done = False
        self.create_subscription(Image, 'camera/image_raw', self._on_image, qos_profile_sensor_data)

    def _on_image(self, msg: Image) -> None:
        now = time.time()
        if self.done:
            return
        if not self.started:
            self.started = time.monotonic() + 2.0  # warm-up
        if time.monotonic() < self.started:
            return
        self.latencies.append(now - msg.header.stamp.sec - msg.header.stamp.nanosec * 1e-9)
        if time.monotonic() - self.started >= self.seconds:
            self.done = True
            ordered = sorted(self.latencies)
            print('hop: ' + json.dumps({
                'n': len(ordered), 'fps': len(ordered) / self.seconds,
                'p50_ms': statistics.median(ordered) * 1e3,
                'p95_ms': ordered[int(0.95 * (len(ordered) - 1))] * 1e3}), flush=True)

    def shutdown(self) -> None:
        """Nothing to stop."""
