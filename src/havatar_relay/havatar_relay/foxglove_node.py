"""ROS 2 node (executable ``foxglove_node``): the robot's topics for Foxglove, no ROS tools needed.

A WebSocket server speaking ``foxglove.websocket.v1`` (the ``foxglove-sdk`` PyPI package)
on ``host``:``port``: Foxglove (the app or app.foxglove.dev in a browser, "Open connection",
``ws://<robot>:8765``) lists every topic matching ``topics``, each with its ``ros2msg``
schema, and receives the CDR messages as they are published, so its Image, 3D (with the
``/tf_static`` frames), Plot, Raw Messages and Log panels work as with foxglove_bridge. A
topic is subscribed on the ROS side only while a client watches it (no camera JPEG is
encoded for nobody). Read only: clients cannot publish, call services or set parameters.
Off by default (launch argument ``foxglove:=true``).
"""
from __future__ import annotations

import importlib
import threading
from typing import Any, Optional

import foxglove
from foxglove.websocket import ChannelView, Client, ServerListener
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data

from .foxglove_topics import BEST_EFFORT, LATCHED, Watchers, offered, subscription_kind
from havatar_common.parameters import ParameterTable, declare_parameters
from havatar_common.ros2msg import full_definition, read_installed_msg
from havatar_common.spin import spin_node

PARAMETERS: ParameterTable = [
    ('host', '0.0.0.0', "Address the Foxglove WebSocket server listens on ('127.0.0.1': this "
     'machine only, e.g. through an SSH tunnel)', None),
    ('port', 8765, 'Port of the Foxglove WebSocket server (foxglove_bridge uses 8765 too)', (1, 65535)),
    ('topics', '.*', 'Regular expression the offered topics match in full', None),
    ('discovery_period', 2.0, 'Seconds between looks for new topics', (0.1, 60.0)),
]

QOS = {
    LATCHED: QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE,  # as tf2's static listener
                        durability=QoSDurabilityPolicy.TRANSIENT_LOCAL),
    BEST_EFFORT: qos_profile_sensor_data,
}


def message_class(type_name: str) -> Any:
    package, _, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


class _Listener(ServerListener):
    """Foxglove's callbacks (on its own thread): count watchers and wake the node."""

    def __init__(self, node: 'FoxgloveNode') -> None:
        self.node = node

    def on_subscribe(self, client: Client, channel: ChannelView) -> None:
        self.node.watchers.add(channel.topic)
        self.node.wake.trigger()

    def on_unsubscribe(self, client: Client, channel: ChannelView) -> None:
        self.node.watchers.remove(channel.topic)
        self.node.wake.trigger()


class FoxgloveNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('foxglove_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        self.params = p
        self.watchers = Watchers()
        self.channels: dict[str, tuple[str, foxglove.Channel]] = {}  # topic -> (type, channel)
        self.subscriptions_by_topic: dict[str, Any] = {}
        self.unknown_types: set[str] = set()
        self._lock = threading.Lock()
        self.sdk_context = foxglove.Context()
        self.wake = self.create_guard_condition(self._follow_watchers)
        self.server = foxglove.start_server(name='havatar', host=p['host'], port=p['port'],
                                            server_listener=_Listener(self), context=self.sdk_context)
        self._discover()
        self.create_timer(p['discovery_period'], self._discover)
        self.get_logger().info(f"Foxglove WebSocket server on ws://{p['host']}:{self.server.port} "
                               f"offering topics matching {p['topics']!r}")

    def _discover(self) -> None:
        """Advertise new topics (and a topic whose type changed) to the clients."""
        for topic, type_name in offered(self.get_topic_names_and_types(), self.params['topics']).items():
            known = self.channels.get(topic)
            if known and known[0] == type_name or type_name in self.unknown_types:
                continue
            try:
                schema = full_definition(type_name, read_installed_msg).encode()
                message_class(type_name)
            except (LookupError, OSError, ImportError, AttributeError, ValueError) as exc:
                self.unknown_types.add(type_name)
                self.get_logger().warning(f'{topic}: type {type_name} is not installed here ({exc}); not offered')
                continue
            if known:
                known[1].close()
            self.channels[topic] = (type_name, foxglove.Channel(
                topic, message_encoding='cdr', context=self.sdk_context,
                schema=foxglove.Schema(name=type_name, encoding='ros2msg', data=schema)))
        self._follow_watchers()

    def _follow_watchers(self) -> None:
        """Subscribe to the topics clients watch, and only to those."""
        watched = self.watchers.watched()
        for topic in set(self.subscriptions_by_topic) - watched:
            self.destroy_subscription(self.subscriptions_by_topic.pop(topic))
        for topic in watched - set(self.subscriptions_by_topic):
            if topic not in self.channels:
                continue
            type_name, channel = self.channels[topic]
            kind = subscription_kind(
                (i.qos_profile.reliability == QoSReliabilityPolicy.RELIABLE,
                 i.qos_profile.durability == QoSDurabilityPolicy.TRANSIENT_LOCAL)
                for i in self.get_publishers_info_by_topic(topic))
            self.subscriptions_by_topic[topic] = self.create_subscription(
                message_class(type_name), topic, lambda data, channel=channel: self._forward(channel, data),
                QOS.get(kind, 10), raw=True)

    def _forward(self, channel: foxglove.Channel, data: bytes) -> None:
        channel.log(data, log_time=self.get_clock().now().nanoseconds)

    def shutdown(self) -> None:
        self.server.stop()


def main(args: Optional[list[str]] = None) -> None:
    spin_node(FoxgloveNode, 'foxglove_node', args)


if __name__ == '__main__':
    main()
