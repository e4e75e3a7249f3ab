"""The relay node's side of ``/audio/ws``: ``audio/mic`` chunks to the ``AudioHub``, subscribed
only while a browser listens (a microphone nobody hears costs the robot nothing here).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from havatar_msgs.msg import AudioChunk

from .audio_stream import AudioHub, encode_frame


class MicForwarder:
    """Owns the ``audio/mic`` subscription (created and destroyed on the executor's thread)."""

    def __init__(self, node: Node, call_soon: Callable[..., Any], topic: str = 'audio/mic') -> None:
        self.node = node
        self.topic = topic
        self.call_soon = call_soon  # runs a function on the local server's loop
        self.hub = AudioHub(self._on_listening)  # lives on that loop
        self._wanted = False
        self._wanted_lock = threading.Lock()
        self._subscription: Optional[Any] = None
        self._guard = node.create_guard_condition(self._update)

    def _on_listening(self, listening: bool) -> None:  # on the server's loop
        with self._wanted_lock:
            self._wanted = listening
        self._guard.trigger()

    def _update(self) -> None:  # on the executor
        with self._wanted_lock:
            wanted = self._wanted
        if wanted and self._subscription is None:
            self._subscription = self.node.create_subscription(AudioChunk, self.topic, self._on_chunk,
                                                               qos_profile_sensor_data)
            self.node.get_logger().info(f'a browser listens: subscribed to {self.topic}')
        elif not wanted and self._subscription is not None:
            self.node.destroy_subscription(self._subscription)
            self._subscription = None
            self.node.get_logger().info(f'no browser listens: unsubscribed from {self.topic}')

    def _on_chunk(self, msg: AudioChunk) -> None:
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        frame = encode_frame(msg.sequence, msg.format.sample_rate, msg.format.channels or 1, stamp_ns,
                             bytes(msg.data))
        self.call_soon(self.hub.publish, frame)
