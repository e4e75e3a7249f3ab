"""ROS 2 streaming node (executable ``streaming_node``): local MJPEG and MediaMTX server mode.

Local mode (always on): MJPEG over HTTP from the camera topics. Server mode: H.264 +
Opus published to MediaMTX over RTSP, talkback read back from ``<stream_key>/talk``.
``stream/set_mode`` (``havatar_msgs/SetStreamMode``) or the ``mode`` parameter switch at
run time; a failing server makes the node fall back to local and retry with back-off.
``stream/status`` (latched) and ``/diagnostics`` report the state.
"""
from __future__ import annotations

import array
import threading
import time
from typing import Any, Optional
from urllib.parse import quote, urlsplit

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from havatar_drivers.audio.pcm import convert
from havatar_common.diagnostics import OK, WARN, diagnostic_array
from havatar_common.audio import PCM_CHANNELS, PCM_RATE
from havatar_common.qos import LATCHED
from havatar_common.secrets import secret
from havatar_common.parameters import ParameterTable, check_choice, declare_parameters
from havatar_common.spin import spin_node
from havatar_msgs.msg import AudioChunk, AudioFormat, StreamStatus
from havatar_msgs.srv import SetStreamMode

from .http_server import MjpegServer
from .mediamtx_api import ApiError, MediaMtxApi
from .mjpeg import FrameHub
from .mode import LOCAL, SERVER, Action, ModeMachine
from .publisher import PublishSettings, RtspPublisher
from .talkback import TalkbackReader

PARAMETERS: ParameterTable = [
    ('mode', 'local', "Requested mode: 'local' (MJPEG only) or 'server' (also publish to "
     'MediaMTX)', None),
    ('mjpeg_host', '0.0.0.0', 'Address the MJPEG server listens on', None),
    ('mjpeg_port', 8081, 'Port of the MJPEG server (/stream.mjpg, /snapshot.jpg)', (1, 65535)),
    ('mjpeg_max_fps', 30.0, 'Frame-rate cap of the MJPEG stream', (0.5, 120.0)),
    ('jpeg_quality', 80, 'JPEG quality of MJPEG frames encoded here', (1, 100)),
    ('access_token', '', 'Token MJPEG viewers must present (?token= or Bearer); default '
     "from HAVATAR_ACCESS_TOKEN; '' = open on the LAN", None),
    ('server_url', 'rtsp://127.0.0.1:8554', 'RTSP address of the MediaMTX server', None),
    ('api_url', '', "MediaMTX API address; '' = http://<server host>:9997; 'none' when the "
     "API is not reachable from the robot (the session is then judged by ffmpeg alone)", None),
    ('stream_key', 'robot', "The robot's path on MediaMTX", None),
    ('stream_user', '', "Publish user; '' = the stream_key", None),
    ('stream_password', '', 'Publish password; default from HAVATAR_STREAM_PASSWORD', None),
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

WATCH_PERIOD = 0.25
# parameters changed while running (the robot's /server/config sets the server ones)
DYNAMIC = ('mode', 'server_url', 'stream_key', 'stream_password')


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


class StreamingNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('streaming_node', **kwargs)
        p = declare_parameters(self, PARAMETERS, dynamic=DYNAMIC)
        check_choice('mode', p['mode'], (LOCAL, SERVER))
        if urlsplit(p['server_url']).scheme not in ('rtsp', 'rtsps'):
            raise ValueError(f"parameter server_url={p['server_url']!r} must be rtsp://host:port")
        if p['retry_max'] < p['retry_min']:
            raise ValueError('parameter retry_max must not be below retry_min')
        self.params = p
        self.password = secret(p['stream_password'], 'HAVATAR_STREAM_PASSWORD')
        self.user = p['stream_user'] or p['stream_key']
        host = urlsplit(p['server_url']).hostname or '127.0.0.1'
        self.api: Optional[MediaMtxApi] = None if p['api_url'] == 'none' else MediaMtxApi(
            p['api_url'] or f'http://{host}:9997', self.user, self.password)

        self._lock = threading.RLock()
        self.machine = ModeMachine(fallback_to_local=p['fallback_to_local'],
                                   backoff_min=p['retry_min'], backoff_max=p['retry_max'])
        self.publisher: Optional[RtspPublisher] = None
        self.talkback: Optional[TalkbackReader] = None
        self._session_started = 0.0
        self._bytes_seen = (0.0, -1)
        self.server_reachable = False
        self.last_error_stamp = self.get_clock().now()
        self._wake = threading.Event()
        self._stop = threading.Event()

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
        self.create_timer(0.25, self._manage_jpeg_subscription)
        self.create_timer(p['diagnostics_period'], self._publish_status)
        self._supervisor = threading.Thread(target=self._supervise, name='stream-supervisor',
                                            daemon=True)
        self._supervisor.start()
        self._apply(self.machine.request(p['mode'], time.monotonic()))
        self.get_logger().info(f"MJPEG on http://{p['mjpeg_host']}:{p['mjpeg_port']}/stream.mjpg; "
                               f"mode {p['mode']}")

    # -- inputs
    def _on_image(self, msg: Image) -> None:
        publisher = self.publisher
        needs_mjpeg = self.hub.wanted() and time.monotonic() - self._last_jpeg > 1.0
        if publisher is None and not needs_mjpeg:
            return  # nobody needs this frame: no conversion, no encoding
        rgb = image_to_rgb(msg)
        if rgb is None:
            self.get_logger().warning(f'cannot stream {msg.encoding} images', throttle_duration_sec=10.0)
            return
        if needs_mjpeg:
            self.hub.put(rgb=rgb)
        if publisher is not None:
            publisher.put_frame(rgb)

    def _on_jpeg(self, msg: CompressedImage) -> None:
        if 'jpeg' in msg.format.lower() and self.hub.put(jpeg=bytes(msg.data)):
            self._last_jpeg = time.monotonic()

    def _manage_jpeg_subscription(self) -> None:
        """Use the camera's JPEG topic while someone watches and the camera offers it."""
        topic = 'camera/image_raw/compressed'
        wanted = self.hub.wanted() and self.count_publishers(topic) > 0
        if wanted and self._jpeg_sub is None:
            self._jpeg_sub = self.create_subscription(CompressedImage, topic, self._on_jpeg,
                                                      qos_profile_sensor_data)
        elif not wanted and self._jpeg_sub is not None:
            self.destroy_subscription(self._jpeg_sub)
            self._jpeg_sub = None

    def _on_audio(self, msg: AudioChunk) -> None:
        publisher = self.publisher
        if publisher is None or msg.format.coding_format not in ('', AudioFormat.CODING_PCM):
            return
        publisher.put_audio(convert(bytes(msg.data), msg.format.sample_rate or PCM_RATE,
                                    msg.format.channels or PCM_CHANNELS, PCM_RATE, PCM_CHANNELS))

    # -- mode switching
    def _on_set_mode(self, request: SetStreamMode.Request,
                     response: SetStreamMode.Response) -> SetStreamMode.Response:
        try:
            self._request(request.mode)
        except ValueError as exc:
            response.success, response.message = False, str(exc)
        else:
            response.success = True
            response.message = ('switching to server mode; stream/status tells when it is active'
                                if request.mode == SERVER and self.machine.active != SERVER
                                else f'{request.mode} mode')
        response.active_mode = self.machine.active
        return response

    def _on_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            if param.name == 'mode':
                try:
                    self._request(param.value)
                except ValueError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
            elif param.name in ('stream_password',):
                self.password = param.value
        return SetParametersResult(successful=True)

    def _request(self, mode: str) -> None:
        with self._lock:
            actions = self.machine.request(mode, time.monotonic())
        self._apply(actions)

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if action is Action.STOP_SERVER:
                self._stop_session()
            self._wake.set()  # START_SERVER is carried out by the supervisor thread
        self._publish_status()

    def _fail(self, reason: str) -> None:
        with self._lock:
            actions = self.machine.failed(reason, time.monotonic())
        self.last_error_stamp = self.get_clock().now()
        self.get_logger().warning(f'server mode failed: {reason}; '
                                  f'{"running local" if self.machine.fallback else "stopped"}'
                                  + (f', retrying in {self.machine.retry_at - time.monotonic():.1f} s'
                                     if self.machine.retry_at else ''))
        self._apply(actions)

    # -- the server session, on the supervisor thread
    def _supervise(self) -> None:
        """Starts and watches the session; stops it as it ends, for the publisher's ffmpeg
        dies with the thread that started it (see ``RtspPublisher.start``)."""
        try:
            self._supervise_until_stopped()
        finally:
            self._stop_session()

    def _supervise_until_stopped(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(WATCH_PERIOD)
            self._wake.clear()
            if self._stop.is_set():
                break
            now = time.monotonic()
            with self._lock:
                retry = self.machine.tick(now)
                starting = self.machine.starting
            if retry:
                self._publish_status()
            if starting and self.publisher is None:
                self._start_session()
            elif self.publisher is not None:
                self._watch_session(now)

    def _start_session(self) -> None:
        if self.api is not None:
            try:
                self.api.check()
            except ApiError as exc:
                self.server_reachable = False
                self._fail(str(exc))
                return
            self.server_reachable = True
        p = self.params
        settings = PublishSettings(
            server_url=p['server_url'], path=p['stream_key'], user=self.user,
            password=self.password, width=p['width'], height=p['height'], fps=p['fps'],
            encoder=p['encoder'], video_bitrate_kbps=p['video_bitrate_kbps'], gop=p['gop'],
            audio=p['audio'], audio_bitrate_kbps=p['audio_bitrate_kbps'])
        publisher = RtspPublisher(settings)
        publisher.start()
        self._session_started = time.monotonic()
        self._bytes_seen = (time.monotonic(), -1)
        self.publisher = publisher
        self.get_logger().info(f'publishing to {settings.url(with_password=False)}')

    def _watch_session(self, now: float) -> None:
        publisher = self.publisher
        assert publisher is not None
        if not publisher.alive():
            self._fail(publisher.exit_reason)
            return
        if self.api is None:
            self._watch_without_api(publisher, now)
            return
        try:
            state = self.api.path(self.params['stream_key'])
            self.server_reachable = True
        except ApiError as exc:
            self.server_reachable = False
            self._fail(str(exc))
            return
        starting = self.machine.starting
        if starting:
            if state.ready:
                with self._lock:
                    self.machine.started(now)
                self._start_talkback()
                self.get_logger().info('server mode active')
                self._publish_status()
            elif now - self._session_started > self.params['start_timeout']:
                self._fail('the server did not receive the stream in time')
            return
        if not state.ready:
            self._fail('the server reports the stream as not ready')
            return
        seen_at, seen_bytes = self._bytes_seen
        if state.bytes_received != seen_bytes:
            self._bytes_seen = (now, state.bytes_received)
        elif now - seen_at > self.params['stall_timeout']:
            self._fail('the stream stalled (no data reached the server)')
        elif now - publisher.last_progress > self.params['stall_timeout'] + 1.0:
            self._fail('the encoder stalled')

    def _watch_without_api(self, publisher: RtspPublisher, now: float) -> None:
        flowing = now - publisher.last_progress < self.params['stall_timeout']
        if self.machine.starting:
            if flowing and publisher.frames_written > 0 and now - self._session_started > 1.0:
                self.server_reachable = True
                with self._lock:
                    self.machine.started(now)
                self._start_talkback()
                self._publish_status()
            elif now - self._session_started > self.params['start_timeout']:
                self._fail('the encoder produced nothing in time')
        elif not flowing:
            self._fail('the encoder stalled')

    def _start_talkback(self) -> None:
        if not self.params['talkback']:
            return
        parts = urlsplit(self.params['server_url'])
        url = (f'rtsp://{quote(self.user, safe="")}:{quote(self.password, safe="")}@'
               f"{parts.hostname}:{parts.port or 8554}/{self.params['stream_key']}/talk")
        self.talkback = TalkbackReader(url, self._on_talkback)
        self.talkback.start()

    def _on_talkback(self, pcm: bytes) -> None:
        msg = AudioChunk(format=AudioFormat(channels=PCM_CHANNELS, sample_rate=PCM_RATE,
                                            sample_format=AudioFormat.SAMPLE_FORMAT_S16LE,
                                            coding_format=AudioFormat.CODING_PCM,
                                            bitrate=PCM_RATE * PCM_CHANNELS * 16))
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = 'talkback'
        msg.sequence = self.talkback.chunks % 2**32 if self.talkback else 0
        msg.data = array.array('B', pcm)
        self.speaker_pub.publish(msg)

    def _stop_session(self) -> None:
        publisher, self.publisher = self.publisher, None
        talkback, self.talkback = self.talkback, None
        if talkback is not None:
            talkback.stop()
        if publisher is not None:
            publisher.stop()

    # -- status
    def _stats(self) -> dict[str, Any]:
        m = self.machine
        return {'requested_mode': m.requested, 'active_mode': m.active, 'fallback': m.fallback}

    def _publish_status(self) -> None:
        m, publisher = self.machine, self.publisher
        msg = StreamStatus(requested_mode=m.requested, active_mode=m.active,
                           fallback_active=m.fallback, server_reachable=self.server_reachable,
                           server_url=self.params['server_url'],
                           fps=float(publisher.fps) if publisher else 0.0,
                           bitrate_kbps=float(publisher.bitrate_kbps) if publisher else 0.0,
                           local_viewers=max(0, self.hub.viewers), last_error=m.last_error)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.last_error_stamp = self.last_error_stamp.to_msg()
        self.status_pub.publish(msg)
        values = {'requested_mode': m.requested, 'active_mode': m.active,
                  'server_reachable': self.server_reachable, 'fps': f'{msg.fps:.1f}',
                  'bitrate_kbps': f'{msg.bitrate_kbps:.0f}', 'mjpeg_viewers': msg.local_viewers,
                  'jpeg_encodes': self.hub.encodes, 'last_error': m.last_error}
        self.diag_pub.publish(diagnostic_array(
            self, 'streaming', self.params['stream_key'], WARN if m.fallback else OK,
            f'fallback to local: {m.last_error}' if m.fallback else f'{m.active} mode', values))

    def shutdown(self) -> None:
        self._stop.set()
        self._wake.set()
        self._supervisor.join(timeout=5)
        self._stop_session()  # already done by the supervisor unless it is stuck
        self.http.stop()


def main(args: Optional[list[str]] = None) -> None:
    spin_node(StreamingNode, 'streaming_node', args)


if __name__ == '__main__':
    main()
