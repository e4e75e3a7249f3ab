"""ROS 2 microphone node (executable ``microphone_node``): ALSA capture or a synthetic source.

Publishes ``audio/mic`` (``havatar_msgs/AudioChunk``, S16LE PCM, sensor-data QoS, one
chunk per ``chunk_ms``) and the latched ``audio/mic/format``; ``/diagnostics`` reports the
device state and the chunk rate.

The same audio goes out as ROS 2 audio_common's ``audio_capture`` publishes it, for the
tools that read those types: ``audio/audio`` (``audio_common_msgs/AudioData``) and
``audio/audio_stamped`` (``AudioDataStamped``), reliable with depth 10, filled only while
someone subscribes, and the latched ``audio/audio_info`` (``AudioInfo``, coding "wave",
sample format "S16LE"). Remap them like any topic.
"""
from __future__ import annotations

import array
import threading
from pathlib import Path
from typing import Any, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from havatar_msgs.msg import AudioChunk, AudioFormat

from .audio.capture import AlsaSource, AudioSource, file_source, tone_source
from havatar_common.audio import PCM_RATE
from havatar_common.diagnostics import ERROR, OK, diagnostic_array
from havatar_common.qos import LATCHED
from havatar_common.parameters import ParameterTable, check_choice, declare_parameters
from havatar_common.spin import spin_node, until_shutdown

PARAMETERS: ParameterTable = [
    ('source', 'alsa', "'alsa' (a capture device), 'tone' (a sine tone) or 'file' (a WAV "
     'file, looped)', None),
    ('device', 'default', "ALSA capture device ('default', 'hw:1,0', 'plughw:CARD=Device')", None),
    ('sample_rate', PCM_RATE, 'Sample rate (Hz)', (8000, 192000)),
    ('channels', 1, 'Channels', (1, 2)),
    ('chunk_ms', 20, 'Duration of one published chunk (ms)', (5, 200)),
    ('tone_hz', 440.0, "Frequency of the 'tone' source (Hz)", (20.0, 20000.0)),
    ('file', '', "WAV file of the 'file' source", None),
    ('frame_id', 'microphone', 'frame_id of the chunk headers', None),
    ('retry_period', 2.0, 'Seconds between attempts to reopen a failing device', (0.1, 60.0)),
    ('diagnostics_period', 1.0, 'Seconds between /diagnostics messages', (0.1, 60.0)),
]



class MicrophoneNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('microphone_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        check_choice('source', p['source'], ('alsa', 'tone', 'file'))
        if p['source'] == 'file' and not Path(p['file']).is_file():
            raise ValueError(f"parameter file={p['file']!r} is not a readable WAV file")
        self.params = p
        self.format = AudioFormat(channels=p['channels'], sample_rate=p['sample_rate'],
                                  sample_format=AudioFormat.SAMPLE_FORMAT_S16LE,
                                  coding_format=AudioFormat.CODING_PCM,
                                  bitrate=p['sample_rate'] * p['channels'] * 16)
        self.chunk_pub = self.create_publisher(AudioChunk, 'audio/mic', qos_profile_sensor_data)
        self.format_pub = self.create_publisher(AudioFormat, 'audio/mic/format', LATCHED)
        self.format_pub.publish(self.format)
        # audio_capture's topics and QoS (ros-drivers/audio_common, ros2 branch)
        self.data_pub = self.create_publisher(AudioData, 'audio/audio', 10)
        self.stamped_pub = self.create_publisher(AudioDataStamped, 'audio/audio_stamped', 10)
        self.info_pub = self.create_publisher(AudioInfo, 'audio/audio_info', LATCHED)
        self.info_pub.publish(AudioInfo(channels=p['channels'], sample_rate=p['sample_rate'],
                                        sample_format='S16LE', coding_format='wave',
                                        bitrate=self.format.bitrate))
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._lock = threading.Lock()
        self.sequence = 0

        frames = p['sample_rate'] * p['chunk_ms'] // 1000
        args = (p['sample_rate'], p['channels'], frames, until_shutdown(self, self._on_chunk))
        self.source: AudioSource
        if p['source'] == 'tone':
            self.source = tone_source(*args, frequency=p['tone_hz'])
        elif p['source'] == 'file':
            self.source = file_source(*args, path=Path(p['file']))
        else:
            self.source = AlsaSource(*args, device=p['device'], retry_period=p['retry_period'])
        self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self.source.start()
        self.get_logger().info(f"capturing {p['sample_rate']} Hz x{p['channels']} in "
                               f"{p['chunk_ms']} ms chunks from {p['source']}")

    def _on_chunk(self, pcm: bytes, stamp_ns: int) -> None:
        msg = AudioChunk(format=self.format)
        msg.header.stamp = rclpy.time.Time(nanoseconds=stamp_ns).to_msg()
        msg.header.frame_id = self.params['frame_id']
        with self._lock:
            msg.sequence = self.sequence
            self.sequence = (self.sequence + 1) % 2**32
        msg.data = array.array('B', pcm)
        self.chunk_pub.publish(msg)
        if self.data_pub.get_subscription_count() > 0:
            self.data_pub.publish(AudioData(data=msg.data))
        if self.stamped_pub.get_subscription_count() > 0:
            self.stamped_pub.publish(AudioDataStamped(header=msg.header, audio=AudioData(data=msg.data)))

    def _publish_diagnostics(self) -> None:
        state = self.source.state
        values = {'source': self.params['source'], 'chunks': state.chunks, 'opens': state.opens,
                  'sample_rate': self.params['sample_rate'], 'chunk_ms': self.params['chunk_ms']}
        self.diag_pub.publish(diagnostic_array(self, 'microphone', str(self.params['device']),
                                               OK if state.ok else ERROR, state.message, values))
        if not state.ok:
            self.get_logger().warning(f'microphone: {state.message}', throttle_duration_sec=10.0)

    def shutdown(self) -> None:
        self.source.stop()


def main(args: Optional[list[str]] = None) -> None:
    spin_node(MicrophoneNode, 'microphone_node', args)


if __name__ == '__main__':
    main()
