"""Publish numbered AudioChunk messages until stopped (the other process of the round trip)."""
import sys

import rclpy
from rclpy.executors import ExternalShutdownException

from havatar_msgs.msg import AudioChunk, AudioFormat


def main() -> None:
    rclpy.init()
    node = rclpy.create_node('audio_chunk_publisher')
    publisher = node.create_publisher(AudioChunk, 'audio/mic', 10)
    sequence = 0

    def publish() -> None:
        nonlocal sequence
        msg = AudioChunk()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = 'mic'
        msg.format = AudioFormat(channels=1, sample_rate=48000,
                                 sample_format=AudioFormat.SAMPLE_FORMAT_S16LE,
                                 coding_format=AudioFormat.CODING_PCM, bitrate=0)
        msg.sequence = sequence
        msg.data = bytes(range(sequence % 256, sequence % 256 + 8))
        publisher.publish(msg)
        sequence += 1

    node.create_timer(0.02, publish)
    print('publishing', flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
