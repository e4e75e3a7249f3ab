"""An MJPEG camera's own JPEGs: split from the stream, passed on as they came, decoded to raw
only while someone subscribes to raw images. An ffmpeg-made MJPEG stream stands in for
the device.
"""
from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PilImage
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from havatar_drivers.camera.jpeg_stream import JpegSplitter
from havatar_drivers.camera.sources import MjpegSource, mjpeg_stream_input
from havatar_drivers.camera.standin import MjpegCameraStandIn
from havatar_drivers.camera_node import JPEG_FORMAT
from havatar_drivers.stamped_pattern import decode
from havatar_testing import find_program, ros_executable, wait_until


def jpeg(seed: int, size: tuple[int, int] = (32, 24), exif: bytes = b'') -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    PilImage.fromarray(rgb).save(out, format='JPEG', quality=70, exif=exif)
    return out.getvalue()


IMAGES = [jpeg(i) for i in range(4)]


# -- pure: splitting the stream
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_any_chunking_gives_the_same_images(cuts):
    stream = b''.join(IMAGES)
    splitter, got, pos = JpegSplitter(), [], 0
    for cut in cuts:
        got += splitter.feed(stream[pos:pos + cut])
        pos += cut
    got += splitter.feed(stream[pos:])
    assert got == IMAGES and splitter.dropped == 0


def test_an_image_is_handed_out_at_its_eoi_not_at_the_next_soi():
    splitter = JpegSplitter()
    assert splitter.feed(IMAGES[0][:-1]) == []
    assert splitter.feed(IMAGES[0][-1:]) == [IMAGES[0]]  # nothing held back


def test_eoi_bytes_inside_a_segment_do_not_end_the_image():
    tricky = jpeg(9, exif=b'Exif\x00\x00' + b'\xff\xd9' * 8)  # EOI bytes inside APP1
    assert tricky.count(b'\xff\xd9') > 1
    assert JpegSplitter().feed(tricky + IMAGES[1]) == [tricky, IMAGES[1]]


def test_garbage_and_an_image_cut_short_are_skipped():
    splitter = JpegSplitter()
    cut = IMAGES[1][:-300]  # ends inside its entropy-coded data, as a frame lost on USB
    stream = b'\x00garbage\xff' + IMAGES[0] + cut + IMAGES[2] + b'\r\n--boundary\r\n\r\n' + IMAGES[3]
    assert splitter.feed(stream) == [IMAGES[0], IMAGES[2], IMAGES[3]]
    assert splitter.dropped == 1


def test_oversized_garbage_is_dropped():
    splitter = JpegSplitter(max_frame_bytes=1000)
    assert splitter.feed(b'\xff\xd8\xff\xe0\x00\x10' + b'x' * 14 + b'\xff\xda\x00\x02' + b'y' * 2000) == []
    assert splitter.dropped == 1
    assert splitter.feed(IMAGES[0]) == [IMAGES[0]]


# -- the source, on an ffmpeg-made MJPEG stream
def test_mjpeg_source_copies_the_streams_jpegs(tmp_path):
    ffmpeg = find_program('ffmpeg')
    stream = tmp_path / 'camera.mjpeg'
    subprocess.run([ffmpeg, '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10',
                    '-frames:v', '12', '-c:v', 'mjpeg', '-f', 'mpjpeg', str(stream)], check=True)
    parts = JpegSplitter().feed(stream.read_bytes())  # the multipart headers are skipped as garbage
    assert len(parts) == 12
    frames: list[tuple[bytes, int]] = []
    source = MjpegSource(64, 48, 10.0, on_jpeg=lambda data, stamp, n: frames.append((data, n)),
                         input_args=mjpeg_stream_input(str(stream)), retry_period=30.0, ffmpeg=ffmpeg)
    source.start()
    try:
        wait_until(lambda: len(frames) >= 12, timeout=20, what='twelve JPEGs')
    finally:
        source.stop()
    assert [data for data, _ in frames[:12]] == parts        # byte for byte: no re-encode
    assert [n for _, n in frames[:12]] == list(range(12))


# -- the node
@pytest.fixture
def standin(tmp_path):
    feed = MjpegCameraStandIn(tmp_path / 'camera.fifo', 320, 240, 15.0, ffmpeg=find_program('ffmpeg')).start()
    yield feed
    feed.stop()


def diag_values(msg: DiagnosticArray) -> dict[str, str]:
    return {kv.key: kv.value for s in msg.status for kv in s.values}


def test_camera_jpegs_pass_through_and_raw_is_decoded_only_on_demand(processes, ros_node, standin):
    node = processes.start('camera_node', [
        ros_executable('havatar_drivers', 'camera_node'), '--ros-args', '-p', 'source:=mjpeg_stream',
        '-p', f'device:={standin.fifo}', '-p', 'width:=320', '-p', 'height:=240', '-p', 'fps:=15.0',
        '-p', 'diagnostics_period:=0.3'])
    node.wait_for_output('publishing', timeout=20)
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    jpegs = ros_node.subscribe(CompressedImage, 'camera/image_raw/compressed', qos_profile_sensor_data)
    msg = jpegs.wait_for(lambda m: True, timeout=20, what='a camera JPEG')
    assert msg.format == JPEG_FORMAT == 'rgb8; jpeg compressed bgr8'  # as image_transport writes it
    rgb = np.array(PilImage.open(io.BytesIO(bytes(msg.data))))
    assert rgb.shape == (240, 320, 3) and decode(rgb) is not None
    values = diag_values(diagnostics.wait_for(
        lambda m: int(diag_values(m)['frames_published']) > 10, timeout=20, what='frames published'))
    assert values['camera_jpeg'] == 'true'
    assert values['jpeg_encodes'] == '0' and values['jpeg_decodes'] == '0'  # nobody wants raw

    images = ros_node.subscribe(Image, 'camera/image_raw', qos_profile_sensor_data)
    image = images.wait_for(lambda m: True, timeout=20, what='a decoded image')
    assert (image.width, image.height, image.encoding) == (320, 240, 'rgb8')
    stamp = decode(np.frombuffer(bytes(image.data), np.uint8).reshape(240, 320, 3))
    assert stamp is not None
    diagnostics.wait_for(lambda m: int(diag_values(m)['jpeg_decodes']) > 0, timeout=10, what='decodes')

