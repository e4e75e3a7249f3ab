"""ROS 2 camera node (executable ``camera_node``): a V4L2 camera or the test pattern.

Publishes ``camera/image_raw`` (rgb8), ``camera/camera_info`` and, only while someone
subscribes, JPEG on ``camera/image_raw/compressed`` (the name and ``format`` field
image_transport's compressed plugin uses), all with the sensor-data QoS, the capture time
and ``camera_optical_frame`` in the header; ``/diagnostics`` reports the device state, the
published rate and the JPEG encodes and decodes. ``/tf_static`` gets the static transforms
``base_link -> camera_link -> camera_optical_frame`` (the mount from parameters; see
``camera/frames.py``), as tf2_ros's StaticTransformBroadcaster publishes them.

An MJPEG camera (``pixel_format`` 'mjpeg', or the ``mjpeg_stream`` stand-in) keeps its
own JPEGs: they are published as they came (no decode and re-encode), and decoded to raw
only while someone subscribes to ``camera/image_raw``, on the capture thread, one frame at
a time (nothing held back).
"""
from __future__ import annotations

import array
import io
import math
import threading
import time
from typing import Any, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from PIL import Image as PilImage
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from .camera.frames import Transform, camera_transforms
from .camera.sources import (FfmpegSource, FrameSource, MjpegSource, PatternSource, mjpeg_stream_input,
                             v4l2_input)
from havatar_common.diagnostics import ERROR, OK, WARN, diagnostic_array
from havatar_common.parameters import ParameterTable, check_choice, declare_parameters
from havatar_common.qos import LATCHED
from havatar_common.spin import spin_node, until_shutdown

PARAMETERS: ParameterTable = [
    ('source', 'v4l2', "'v4l2' (a camera) or 'test_pattern' (moving pattern carrying its "
     "capture time, for machines without a camera) or 'mjpeg_stream' (a multipart-JPEG "
     'file or FIFO named by device, standing in for an MJPEG camera)', None),
    ('device', '/dev/video0', 'V4L2 device: a path, a /dev/v4l/by-id name, or part of the '
     "camera's name as the kernel reports it", None),
    ('width', 640, 'Image width (px)', (16, 7680)),
    ('height', 480, 'Image height (px)', (16, 4320)),
    ('fps', 30.0, 'Frame rate (Hz)', (0.5, 240.0)),
    ('pixel_format', '', "V4L2 pixel format to ask for ('mjpeg', 'yuyv422', ...); '' lets "
     'the camera choose', None),
    ('frame_id', 'camera_optical_frame', 'frame_id of the image headers: the optical frame (z '
     'forward, x right, y down) published on /tf_static under camera_frame_id', None),
    ('camera_frame_id', 'camera_link', 'The camera body frame (x forward, y left, z up)', None),
    ('base_frame_id', 'base_link', "The robot's base frame the camera is mounted on", None),
    ('mount_x', 0.0, "Camera position in base_frame_id, forward (m); measure your robot's", (-10.0, 10.0)),
    ('mount_y', 0.0, 'Camera position in base_frame_id, left (m)', (-10.0, 10.0)),
    ('mount_z', 1.0, 'Camera position in base_frame_id, up (m)', (-10.0, 10.0)),
    ('mount_roll', 0.0, 'Camera roll about its x (forward) axis (rad)', (-3.1416, 3.1416)),
    ('mount_pitch', 0.0, 'Camera pitch about its y axis (rad; positive looks down)', (-3.1416, 3.1416)),
    ('mount_yaw', 0.0, 'Camera yaw about its z axis (rad; positive looks left)', (-3.1416, 3.1416)),
    ('jpeg_quality', 80, 'JPEG quality of the compressed topic', (1, 100)),
    ('keep_jpeg', True, "Publish an MJPEG camera's own JPEGs and decode them only for raw "
     'subscribers; false decodes every frame and encodes JPEG anew', None),
    ('horizontal_fov', 60.0, 'Horizontal field of view (deg) for the pinhole CameraInfo '
     'of an uncalibrated camera', (1.0, 179.0)),
    ('retry_period', 2.0, 'Seconds between attempts to reopen a lost camera', (0.1, 60.0)),
    ('diagnostics_period', 1.0, 'Seconds between /diagnostics messages', (0.1, 60.0)),
]

# CompressedImage.format as image_transport's compressed plugin writes it for an rgb8 image:
# "<raw encoding>; jpeg compressed <encoding of the decoded pixels>" (the plugin encodes
# colour through OpenCV as bgr8; a JPEG holds no channel order, so decoders read it alike)
JPEG_FORMAT = 'rgb8; jpeg compressed bgr8'


def pinhole_camera_info(width: int, height: int, horizontal_fov_deg: float) -> CameraInfo:
    """An ideal pinhole model for a camera without calibration."""
    focal = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.d = [0.0] * 5
    info.k = [focal, 0.0, width / 2.0, 0.0, focal, height / 2.0, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [focal, 0.0, width / 2.0, 0.0, 0.0, focal, height / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    PilImage.fromarray(rgb).save(out, format='JPEG', quality=quality)
    return out.getvalue()


def decode_jpeg(jpeg: bytes) -> np.ndarray:
    """RGB pixels of a JPEG (libjpeg-turbo through Pillow, which releases the GIL meanwhile)."""
    with PilImage.open(io.BytesIO(jpeg)) as image:
        return np.asarray(image.convert('RGB'))


class CameraNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('camera_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        check_choice('source', p['source'], ('v4l2', 'test_pattern', 'mjpeg_stream'))
        self.params = p
        self.image_pub = self.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
        self.compressed_pub = self.create_publisher(
            CompressedImage, 'camera/image_raw/compressed', qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, 'camera/camera_info', qos_profile_sensor_data)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.tf_static_pub = self.create_publisher(TFMessage, '/tf_static', LATCHED)
        self.tf_static_pub.publish(TFMessage(transforms=[self._transform(t) for t in camera_transforms(
            p['base_frame_id'], p['camera_frame_id'], p['frame_id'],
            (p['mount_x'], p['mount_y'], p['mount_z']),
            (p['mount_roll'], p['mount_pitch'], p['mount_yaw']))]))
        self.camera_info = pinhole_camera_info(p['width'], p['height'], p['horizontal_fov'])
        self.camera_info.header.frame_id = p['frame_id']
        self._lock = threading.Lock()
        self.published = 0
        self.jpeg_encodes = 0
        self.jpeg_decodes = 0
        self._rate_mark = (time.monotonic(), 0)

        size = (p['width'], p['height'], p['fps'])
        self.source: FrameSource
        if p['source'] == 'mjpeg_stream':
            input_args = mjpeg_stream_input(p['device'])
        else:
            input_args = v4l2_input(p['device'], *size, p['pixel_format'])
        self.keeps_jpeg = p['keep_jpeg'] and (
            p['source'] == 'mjpeg_stream' or p['source'] == 'v4l2' and p['pixel_format'] == 'mjpeg')
        on_frame, on_jpeg = until_shutdown(self, self._on_frame), until_shutdown(self, self._on_jpeg)
        if p['source'] == 'test_pattern':
            self.source = PatternSource(*size, on_frame=on_frame)
        elif self.keeps_jpeg:
            self.source = MjpegSource(*size, on_jpeg=on_jpeg, retry_period=p['retry_period'], input_args=input_args)
        else:
            self.source = FfmpegSource(*size, on_frame=on_frame, retry_period=p['retry_period'], input_args=input_args)
        self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self.source.start()
        self.get_logger().info(f"publishing {p['width']}x{p['height']} at {p['fps']:g} Hz from "
                               f"{p['device'] if p['source'] == 'v4l2' else 'the test pattern'}")

    def _transform(self, t: Transform) -> TransformStamped:
        msg = TransformStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id, msg.child_frame_id = t.parent, t.child
        msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = t.translation
        r = msg.transform.rotation
        r.x, r.y, r.z, r.w = t.rotation
        return msg

    def _image(self, rgb: np.ndarray, stamp: Any) -> Image:
        height, width = rgb.shape[:2]
        msg = Image(height=height, width=width, encoding='rgb8', is_bigendian=0, step=width * 3)
        msg.header.stamp = stamp
        msg.header.frame_id = self.params['frame_id']
        msg.data = array.array('B', rgb.tobytes())
        return msg

    def _on_frame(self, rgb: np.ndarray, stamp_ns: int, frame_number: int) -> None:
        """Runs on the source's thread: publish the frame (and its JPEG if anyone wants it)."""
        stamp = rclpy.time.Time(nanoseconds=stamp_ns).to_msg()
        msg = self._image(rgb, stamp)
        self.image_pub.publish(msg)
        self.camera_info.header.stamp = stamp
        self.info_pub.publish(self.camera_info)
        if self.compressed_pub.get_subscription_count() > 0:
            jpeg = CompressedImage(format=JPEG_FORMAT)
            jpeg.header = msg.header
            jpeg.data = array.array('B', encode_jpeg(rgb, self.params['jpeg_quality']))
            self.compressed_pub.publish(jpeg)
            with self._lock:
                self.jpeg_encodes += 1
        with self._lock:
            self.published += 1

    def _on_jpeg(self, jpeg: bytes, stamp_ns: int, frame_number: int) -> None:
        """Runs on the source's thread: the camera's JPEG as it came; raw only if wanted."""
        stamp = rclpy.time.Time(nanoseconds=stamp_ns).to_msg()
        if self.compressed_pub.get_subscription_count() > 0:
            msg = CompressedImage(format=JPEG_FORMAT)
            msg.header.stamp = stamp
            msg.header.frame_id = self.params['frame_id']
            msg.data = array.array('B', jpeg)
            self.compressed_pub.publish(msg)
        if self.image_pub.get_subscription_count() > 0:
            try:
                rgb = decode_jpeg(jpeg)
            except (OSError, ValueError) as exc:  # a corrupt frame: skip it
                self.get_logger().warning(f'cannot decode a camera JPEG: {exc}', throttle_duration_sec=10.0)
            else:
                self.image_pub.publish(self._image(rgb, stamp))
                with self._lock:
                    self.jpeg_decodes += 1
        self.camera_info.header.stamp = stamp
        self.info_pub.publish(self.camera_info)
        with self._lock:
            self.published += 1

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        with self._lock:
            published, encodes, decodes = self.published, self.jpeg_encodes, self.jpeg_decodes
        then, count = self._rate_mark
        self._rate_mark = (now, published)
        rate = (published - count) / (now - then) if now > then else 0.0
        state = self.source.state
        level = ERROR if not state.ok else WARN if rate < 0.5 * self.params['fps'] else OK
        values = {'source': self.params['source'], 'device': self.params['device'],
                  'fps': f'{rate:.2f}', 'frames_published': published, 'jpeg_encodes': encodes,
                  'jpeg_decodes': decodes, 'camera_jpeg': str(self.keeps_jpeg).lower(),
                  'opens': state.opens, 'state': state.message}
        self.diag_pub.publish(diagnostic_array(
            self, 'camera', state.device or str(self.params['device']), level,
            state.message if not state.ok else f'{rate:.1f} fps', values))
        if not state.ok:
            self.get_logger().warning(f'camera: {state.message}', throttle_duration_sec=10.0)

    def shutdown(self) -> None:
        self.source.stop()


def main(args: Optional[list[str]] = None) -> None:
    spin_node(CameraNode, 'camera_node', args)


if __name__ == '__main__':
    main()
