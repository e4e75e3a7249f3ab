"""ROS 2 streaming node (executable ``streaming_node``): local MJPEG and MediaMTX server mode.

Local mode (always on): MJPEG over HTTP from the camera topics. Server mode: H.264 +
Opus published to MediaMTX over RTSP, talkback read back from ``<stream_key>/talk``.
``stream/set_mode`` (``havatar_msgs/SetStreamMode``) or the ``mode`` parameter switch at
run time; a failing server makes the node fall back to local and retry with back-off.
``stream/status`` (latched) and ``/diagnostics`` report the state.

The node only wires: the mode machine (``mode.py``) decides, the session supervisor
(``supervisor.py``) alone starts and stops the sessions, ``session_health.py`` judges them.
Of the parameters only ``DYNAMIC`` ones change at run time (a server setting restarts a
running session with the new value); the others are read-only.
"""
from __future__ import annotations

import array
import time
from typing import Any, Optional
from urllib.parse import urlsplit

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from havatar_drivers.audio.pcm import convert
from havatar_common.diagnostics import OK, WARN, diagnostic_array
from havatar_common.audio import PCM_CHANNELS, PCM_RATE, PCM_SAMPLE_BYTES
from havatar_common.qos import LATCHED
from havatar_common.secrets import secret
from havatar_common.parameters import ParameterTable, check_choice, declare_parameters
from havatar_common.spin import spin_node
from havatar_msgs.msg import AudioChunk, AudioFormat, StreamStatus
from havatar_msgs.srv import SetStreamMode

from .http_server import MjpegServer
from .mjpeg import FrameHub
from .mode import LOCAL, SERVER, ModeMachine
from .rtsp_session import PublishSettings
from .session_parts import ServerTarget, SessionParts
from .supervisor import SessionSupervisor

PARAMETERS: ParameterTable = [
    ('mode', 'local', "Requested mode: 'local' (MJPEG only) or 'server' (also publish to "
     'MediaMTX)', None),
    ('mjpeg_host', '0.0.0.0', 'Address the MJPEG server listens on', None),
    ('mjpeg_port', 8081, 'Port of the MJPEG server (/stream.mjpg, /snapshot.jpg)', (1, 65535)),
    ('mjpeg_max_fps', 30.0, 'Frame-rate cap of the MJPEG stream', (0.5, 120.0)),
    ('jpeg_quality', 80, 'JPEG quality of MJPEG frames encoded here', (1, 100)),
    ('access_token', '', 'Token MJPEG viewers must present (?token= or Bearer); default '
     "from HAVATAR_ACCESS_TOKEN; '' = open on the LAN", None),
    ('server_url', 'rtsp://127.0.0.1:8554', 'RTSP address of the MediaMTX server (rtsp:// or '
     'rtsps://); a change restarts a running session', None),
    ('api_url', '', "MediaMTX API address; '' = http://<server_url host>:9997; 'none' when the "
     "API is not reachable from the robot (the session is then judged by ffmpeg alone)", None),
    ('stream_key', 'robot', "The robot's path on MediaMTX; a change restarts a running session",
     None),
    ('stream_user', '', "Publish user; '' = the stream_key", None),
    ('stream_password', '', 'Publish password; default from HAVATAR_STREAM_PASSWORD; a change '
     'restarts a running session', None),
    ('fallback_to_local', True, 'Fall back to local and retry when the server fails', None),
    ('encoder', 'libx264', "ffmpeg H.264 encoder: 'libx264', or 'h264_v4l2m2m' on a "
     'Raspberry Pi 4', None),
    ('video_bitrate_kbps', 1000, 'H.264 bit rate (kbit/s)', (50, 20000)),
    ('gop', 30, 'Frames between key frames', (1, 600)),
    ('width', 640, 'Width of the published video (frames are scaled to it)', (16, 3840)),
    ('height', 480, 'Height of the published video', (16, 2160)),
    ('fps', 30.0, 'Frame rate of the published video (the camera sets the real rate)',
     (1.0, 120.0)),
    ('audio', True, 'Publish the microphone (audio/mic) as Opus', None),
    ('audio_bitrate_kbps', 64, 'Opus bit rate (kbit/s)', (6, 510)),
    ('talkback', True, 'Play what browsers publish to <stream_key>/talk on audio/speaker', None),
    ('retry_min', 1.0, 'First retry delay after a server failure (s)', (0.1, 600.0)),
    ('retry_max', 30.0, 'Longest retry delay (s)', (0.1, 3600.0)),
    ('start_timeout', 6.0, 'Seconds for a new publish session to become ready', (1.0, 60.0)),
    ('stall_timeout', 1.5, 'Seconds without encoder output or server progress before the '
     'session counts as failed', (0.3, 30.0)),
    ('diagnostics_period', 1.0, 'Seconds between status and /diagnostics messages', (0.1, 60.0)),
]

# parameters applied while running (the robot's /server/config sets the server ones)
DYNAMIC = ('mode', 'server_url', 'stream_key', 'stream_password')
SERVER_PARAMETERS = ('server_url', 'stream_key', 'stream_password')
RTSP_SCHEMES = ('rtsp', 'rtsps')

JPEG_TOPIC = 'camera/image_raw/compressed'
JPEG_TOPIC_CHECK_PERIOD = 0.25  # s between checks whether the camera's JPEGs are wanted
CAMERA_JPEG_FRESH = 1.0  # s a camera JPEG stays the MJPEG source before frames are encoded here
SEQUENCE_MODULO = 2**32  # AudioChunk.sequence is a uint32


def image_to_rgb(msg: Image) -> Optional[np.ndarray]:
    """An RGB array for the common encodings; None for others."""
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if msg.encoding in ('rgb8', 'bgr8'):
        rows = data.reshape(msg.height, msg.step)[:, :msg.width * 3]
        rgb = rows.reshape(msg.height, msg.width, 3)
        return rgb[..., ::-1] if msg.encoding == 'bgr8' else rgb
    if msg.encoding == 'mono8':
        gray = data.reshape(msg.height, msg.step)[:, :msg.width]
        return np.repeat(gray[..., np.newaxis], 3, axis=2)
    return None


def check_server_parameter(name: str, value: str) -> str:
    """``value`` if it is a usable ``server_url`` or ``stream_key``; ValueError naming it."""
    if name == 'server_url':
        parts = urlsplit(value)
        if parts.scheme not in RTSP_SCHEMES or not parts.hostname:
            raise ValueError(f'parameter server_url={value!r} must be rtsp://host:port')
    elif name == 'stream_key' and not value.strip('/'):
        raise ValueError('parameter stream_key must not be empty')
    return value


class StreamingNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('streaming_node', **kwargs)
        p = declare_parameters(self, PARAMETERS, dynamic=DYNAMIC)
        check_choice('mode', p['mode'], (LOCAL, SERVER))
        for name in ('server_url', 'stream_key'):
            check_server_parameter(name, p[name])
        if p['retry_max'] < p['retry_min']:
            raise ValueError('parameter retry_max must not be below retry_min')
        self.params = p
        self.last_error_stamp = self.get_clock().now()
        self._talk_sequence = 0

        publish = PublishSettings(
            server_url=p['server_url'], path=p['stream_key'], user='', password='',
            width=p['width'], height=p['height'], fps=p['fps'], encoder=p['encoder'],
            video_bitrate_kbps=p['video_bitrate_kbps'], gop=p['gop'], audio=p['audio'],
            audio_bitrate_kbps=p['audio_bitrate_kbps'])
        self.supervisor = SessionSupervisor(
            ModeMachine(fallback_to_local=p['fallback_to_local'], backoff_min=p['retry_min'],
                        backoff_max=p['retry_max']),
            SessionParts(publish, p['talkback'], self._on_talkback), self._target(),
            p['start_timeout'], p['stall_timeout'], self.get_logger(),
            on_change=self._publish_status, on_failure=self._on_failure)

        self.hub = FrameHub(p['jpeg_quality'], p['mjpeg_max_fps'])
        token = secret(p['access_token'], 'HAVATAR_ACCESS_TOKEN')
        self.http = MjpegServer(self.hub, p['mjpeg_host'], p['mjpeg_port'], token,
                                stats=self._stats)
        self.http.start()  # fails at start-up, naming the port, if it is taken

        self.status_pub = self.create_publisher(StreamStatus, 'stream/status', LATCHED)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.speaker_pub = self.create_publisher(AudioChunk, 'audio/speaker', qos_profile_sensor_data)
        self.create_subscription(Image, 'camera/image_raw', self._on_image, qos_profile_sensor_data)
        self.create_subscription(AudioChunk, 'audio/mic', self._on_audio, qos_profile_sensor_data)
        self._jpeg_sub = None
        self._last_jpeg = 0.0
        self.create_service(SetStreamMode, 'stream/set_mode', self._on_set_mode)
        self.add_on_set_parameters_callback(self._on_parameters)
        self.create_timer(JPEG_TOPIC_CHECK_PERIOD, self._manage_jpeg_subscription)
        self.create_timer(p['diagnostics_period'], self._publish_status)
        self.supervisor.start()
        self._request(p['mode'])
        self.get_logger().info(f"MJPEG on http://{p['mjpeg_host']}:{p['mjpeg_port']}/stream.mjpg; "
                               f"mode {p['mode']}")

    def _target(self) -> ServerTarget:
        p = self.params
        return ServerTarget(p['server_url'], p['stream_key'], p['stream_user'] or p['stream_key'],
                            secret(p['stream_password'], 'HAVATAR_STREAM_PASSWORD'), p['api_url'])

    # -- inputs
    def _on_image(self, msg: Image) -> None:
        session = self.supervisor.session
        needs_mjpeg = self.hub.wanted() and time.monotonic() - self._last_jpeg > CAMERA_JPEG_FRESH
        if session is None and not needs_mjpeg:
            return  # nobody needs this frame: no conversion, no encoding
        rgb = image_to_rgb(msg)
        if rgb is None:
            self.get_logger().warning(f'cannot stream {msg.encoding} images', throttle_duration_sec=10.0)
            return
        if needs_mjpeg:
            self.hub.put(rgb=rgb)
        if session is not None:
            session.put_frame(rgb)

    def _on_jpeg(self, msg: CompressedImage) -> None:
        if 'jpeg' in msg.format.lower() and self.hub.put(jpeg=bytes(msg.data)):
            self._last_jpeg = time.monotonic()

    def _manage_jpeg_subscription(self) -> None:
        """Use the camera's JPEG topic while someone watches and the camera offers it."""
        wanted = self.hub.wanted() and self.count_publishers(JPEG_TOPIC) > 0
        if wanted and self._jpeg_sub is None:
            self._jpeg_sub = self.create_subscription(CompressedImage, JPEG_TOPIC, self._on_jpeg,
                                                      qos_profile_sensor_data)
        elif not wanted and self._jpeg_sub is not None:
            self.destroy_subscription(self._jpeg_sub)
            self._jpeg_sub = None

    def _on_audio(self, msg: AudioChunk) -> None:
        session = self.supervisor.session
        if session is None or msg.format.coding_format not in ('', AudioFormat.CODING_PCM):
            return
        session.put_audio(convert(bytes(msg.data), msg.format.sample_rate or PCM_RATE,
                                  msg.format.channels or PCM_CHANNELS, PCM_RATE, PCM_CHANNELS))

    def _on_talkback(self, pcm: bytes) -> None:
        """A chunk of talkback audio (on the talkback reader's thread)."""
        msg = AudioChunk(format=AudioFormat(channels=PCM_CHANNELS, sample_rate=PCM_RATE,
                                            sample_format=AudioFormat.SAMPLE_FORMAT_S16LE,
                                            coding_format=AudioFormat.CODING_PCM,
                                            bitrate=PCM_RATE * PCM_CHANNELS * PCM_SAMPLE_BYTES * 8))
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = 'talkback'
        msg.sequence = self._talk_sequence % SEQUENCE_MODULO
        self._talk_sequence += 1
        msg.data = array.array('B', pcm)
        self.speaker_pub.publish(msg)

    # -- mode and server settings: the supervisor carries them out
    def _on_set_mode(self, request: SetStreamMode.Request,
                     response: SetStreamMode.Response) -> SetStreamMode.Response:
        try:
            self._request(request.mode)
        except ValueError as exc:
            response.success, response.message = False, str(exc)
        else:
            response.success = True
            response.message = ('switching to server mode; stream/status tells when it is active'
                                if request.mode == SERVER and self.supervisor.status().active != SERVER
                                else f'{request.mode} mode')
        response.active_mode = self.supervisor.status().active
        return response

    def _on_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Apply changes of the ``DYNAMIC`` parameters (rclpy refuses the read-only ones)."""
        changed = {param.name: param.value for param in params if param.name in DYNAMIC}
        try:
            if 'mode' in changed:
                check_choice('mode', changed['mode'], (LOCAL, SERVER))
            for name in ('server_url', 'stream_key'):
                if name in changed:
                    check_server_parameter(name, changed[name])
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.params.update(changed)
        if set(changed) & set(SERVER_PARAMETERS) and self.supervisor.retarget(self._target()):
            self.get_logger().info(f"server settings changed: {self.params['server_url']}, "
                                   f"path {self.params['stream_key']}")
            self._publish_status()
        if 'mode' in changed:
            self._request(changed['mode'])
        return SetParametersResult(successful=True)

    def _request(self, mode: str) -> None:
        self.supervisor.request(mode)
        self._publish_status()

    def _on_failure(self, reason: str) -> None:
        self.last_error_stamp = self.get_clock().now()

    # -- status
    def _stats(self) -> dict[str, Any]:
        s = self.supervisor.status()
        return {'requested_mode': s.requested, 'active_mode': s.active, 'fallback': s.fallback}

    def _publish_status(self) -> None:
        s, target = self.supervisor.status(), self.supervisor.target
        msg = StreamStatus(requested_mode=s.requested, active_mode=s.active,
                           fallback_active=s.fallback, server_reachable=s.server_reachable,
                           server_url=target.server_url, fps=s.fps, bitrate_kbps=s.bitrate_kbps,
                           local_viewers=max(0, self.hub.viewers), last_error=s.last_error)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.last_error_stamp = self.last_error_stamp.to_msg()
        self.status_pub.publish(msg)
        values = {'requested_mode': s.requested, 'active_mode': s.active,
                  'server_reachable': s.server_reachable, 'fps': f'{msg.fps:.1f}',
                  'bitrate_kbps': f'{msg.bitrate_kbps:.0f}', 'mjpeg_viewers': msg.local_viewers,
                  'jpeg_encodes': self.hub.encodes, 'last_error': s.last_error}
        self.diag_pub.publish(diagnostic_array(
            self, 'streaming', target.stream_key, WARN if s.fallback else OK,
            f'fallback to local: {s.last_error}' if s.fallback else f'{s.active} mode', values))

    def shutdown(self) -> None:
        self.supervisor.stop()  # its thread closes the session
        self.http.stop()

def main(args: Optional[list[str]] = None) -> None:
    spin_node(StreamingNode, 'streaming_node', args)


if __name__ == '__main__':
    main()
