"""The watchdog's ROS side in ``run_robot``: heartbeats from ``/diagnostics`` in, restarts out.

A node ``run_robot`` spinning on a thread of its own. Every ``/diagnostics`` status named
``<node>: ...`` is that node's heartbeat; the motor node's ``ESP32 link`` status also says
which serial port it drives (where the watchdog writes STOP while the node is down). The
restarts are published as the status ``run_robot: watchdog`` (WARN once any happened).
"""
from __future__ import annotations

import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from .watchdog import Watchdog

NODE_NAME = 'run_robot'
PUBLISH_PERIOD_S = 1.0


class WatchdogTopics:
    """Feeds ``watchdog`` with heartbeats and publishes its restarts."""

    def __init__(self, watchdog: Watchdog, namespace: str = '') -> None:
        self.watchdog = watchdog
        self.motor_port = ''
        # run_robot keeps its own SIGINT/SIGTERM handling (stop every node first)
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(NODE_NAME, namespace=namespace, context=self.context)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.publisher = self.node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.node.create_timer(PUBLISH_PERIOD_S, self.publish)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, name='watchdog-topics', daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        sent = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        for status in msg.status:
            node, sep, what = status.name.partition(': ')
            if not sep or node == NODE_NAME:
                continue
            self.watchdog.beat(node, now, sent)
            if node == 'motor_node' and what == 'ESP32 link':
                port = next((kv.value for kv in status.values if kv.key == 'port'), '')
                if port.startswith('/'):
                    self.motor_port = port

    def publish(self) -> None:
        message, values = self.watchdog.summary()
        status = DiagnosticStatus(
            name=f'{NODE_NAME}: watchdog', hardware_id='robot', message=message,
            level=DiagnosticStatus.WARN if values else DiagnosticStatus.OK,
            values=[KeyValue(key=k, value=v) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(msg)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=2.0)
