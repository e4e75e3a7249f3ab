"""The real camera_node process: images, camera info, JPEG on demand, device errors."""
from __future__ import annotations

import io

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from PIL import Image as PilImage
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from havatar_common.qos import LATCHED
from havatar_drivers.camera.frames import OPTICAL_ROTATION, quaternion_from_rpy
from havatar_drivers.camera.sources import FfmpegSource
from havatar_drivers.camera_node import JPEG_FORMAT
from havatar_drivers.stamped_pattern import decode
from havatar_testing import find_program, ros_executable, wait_until


def diag_values(msg: DiagnosticArray) -> dict[str, str]:
    return {kv.key: kv.value for s in msg.status for kv in s.values}


@pytest.fixture
def camera(processes):
    def start(*params: str):
        argv = [ros_executable('havatar_drivers', 'camera_node'), '--ros-args']
        for p in params:
            argv += ['-p', p]
        node = processes.start('camera_node', argv)
        node.wait_for_output('publishing', timeout=20)
        return node
    return start


def test_test_pattern_images_carry_their_capture_time(camera, ros_node):
    camera('source:=test_pattern', 'width:=320', 'height:=240', 'fps:=20.0')
    images = ros_node.subscribe(Image, 'camera/image_raw', qos_profile_sensor_data)
    infos = ros_node.subscribe(CameraInfo, 'camera/camera_info', qos_profile_sensor_data)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    # the rate the node publishes at, by its own count (best-effort delivery of 230 kB images to
    # this test's subscriber loses many on a loaded machine, which says nothing of the node)
    diagnostics.wait_for(lambda m: float(diag_values(m)['fps']) >= 20 * 0.6, timeout=20, what='20 Hz')
    wait_until(lambda: len(images.messages) >= 5, timeout=20, what='5 images')
    msg = images.messages[-1]
    assert (msg.width, msg.height, msg.encoding, msg.step) == (320, 240, 'rgb8', 960)
    rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(240, 320, 3)
    stamp = decode(rgb)
    assert stamp is not None
    header_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
    assert stamp.stamp_ns == header_ns // 10**6 * 10**6  # the header stamp is the capture time
    info = infos.wait_for(lambda m: True, timeout=5, what='camera info')
    assert (info.width, info.height) == (320, 240) and info.k[0] > 0


def test_jpeg_is_encoded_only_while_someone_subscribes(camera, ros_node):
    camera('source:=test_pattern', 'width:=320', 'height:=240', 'fps:=15.0',
           'diagnostics_period:=0.3')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    first = diagnostics.wait_for(lambda m: int(diag_values(m)['frames_published']) > 10,
                                 timeout=20, what='frames published')
    assert diag_values(first)['jpeg_encodes'] == '0'

    jpegs = ros_node.subscribe(CompressedImage, 'camera/image_raw/compressed', qos_profile_sensor_data)
    msg = jpegs.wait_for(lambda m: True, timeout=10, what='a JPEG')
    assert msg.format == JPEG_FORMAT == 'rgb8; jpeg compressed bgr8'  # as image_transport writes it
    rgb = np.array(PilImage.open(io.BytesIO(bytes(msg.data))))
    assert decode(rgb) is not None


def test_static_transforms_put_the_optical_frame_on_the_robot(camera, ros_node):
    camera('source:=test_pattern', 'width:=160', 'height:=120', 'fps:=10.0', 'mount_x:=0.12',
           'mount_z:=1.35', 'mount_pitch:=0.25')
    # a late subscriber still gets them, as tf2_ros's static listener would
    tf = ros_node.subscribe(TFMessage, '/tf_static', LATCHED).wait_for(timeout=10, what='/tf_static')
    mount, optical = sorted(tf.transforms, key=lambda t: t.header.frame_id)
    assert (mount.header.frame_id, mount.child_frame_id) == ('base_link', 'camera_link')
    assert (optical.header.frame_id, optical.child_frame_id) == ('camera_link', 'camera_optical_frame')
    t = mount.transform
    assert (t.translation.x, t.translation.y, t.translation.z) == (0.12, 0.0, 1.35)
    assert np.allclose([t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w], quaternion_from_rpy(0, 0.25, 0))
    r = optical.transform.rotation
    assert (r.x, r.y, r.z, r.w) == OPTICAL_ROTATION
    info, = ros_node.node.get_publishers_info_by_topic('/tf_static')
    assert (info.qos_profile.durability, info.qos_profile.reliability) == \
        (DurabilityPolicy.TRANSIENT_LOCAL, ReliabilityPolicy.RELIABLE)  # tf2_ros's static QoS

    frames = {
        'image': ros_node.subscribe(Image, 'camera/image_raw', qos_profile_sensor_data),
        'info': ros_node.subscribe(CameraInfo, 'camera/camera_info', qos_profile_sensor_data),
        'jpeg': ros_node.subscribe(CompressedImage, 'camera/image_raw/compressed', qos_profile_sensor_data),
    }
    for what, log in frames.items():
        assert log.wait_for(timeout=10, what=what).header.frame_id == 'camera_optical_frame', what


def test_missing_device_is_reported_and_the_node_keeps_running(camera, ros_node):
    node = camera('source:=v4l2', 'device:=/dev/video-does-not-exist', 'retry_period:=0.2',
                  'diagnostics_period:=0.3')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    msg = diagnostics.wait_for(lambda m: any(s.level == s.ERROR for s in m.status),
                               timeout=20, what='an ERROR diagnostic')
    assert 'not found' in msg.status[0].message
    assert node.running()


def test_bad_parameter_fails_at_start_up(processes):
    node = processes.start('camera_node', [ros_executable('havatar_drivers', 'camera_node'),
                                           '--ros-args', '-p', 'source:=webcam'])
    assert node.wait_exit(timeout=20) == 2
    assert "source='webcam'" in node.output()


def test_ffmpeg_source_reopens_when_its_input_ends():
    """A capture that ends (an unplugged camera) is reopened; here with a 0.5 s clip."""
    frames = []
    source = FfmpegSource(
        64, 48, 10.0, on_frame=lambda rgb, stamp, n: frames.append(n),
        input_args=lambda: ['-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10:duration=0.5'],
        retry_period=0.1, ffmpeg=find_program('ffmpeg'))
    source.start()
    try:
        wait_until(lambda: source.state.opens >= 3, timeout=20, what='three opens')
    finally:
        source.stop()
    assert len(frames) >= 10 and frames == sorted(frames)
