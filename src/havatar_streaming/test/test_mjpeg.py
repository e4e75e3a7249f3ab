"""Local MJPEG: one encode per frame for any number of viewers; a stalled viewer hurts nobody."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Optional

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from havatar_streaming.mjpeg import FrameHub
from havatar_testing import wait_until
from havatar_testing.streaming import MJPEG_TOKEN

FPS = 15.0


def count_frames(port: int, seconds: float, counts: list[int], index: int,
                 token: str = MJPEG_TOKEN) -> None:
    """Read the MJPEG stream for ``seconds`` and count the JPEG parts."""
    url = f'http://127.0.0.1:{port}/stream.mjpg' + (f'?token={token}' if token else '')
    with urllib.request.urlopen(url, timeout=10) as response:
        end = time.monotonic() + seconds
        buffer = b''
        while time.monotonic() < end:
            buffer += response.read1(65536)
            counts[index] += buffer.count(b'\xff\xd9\r\n--')
            buffer = buffer[buffer.rfind(b'\xff\xd9\r\n--') + 1:] if b'\xff\xd9\r\n--' in buffer else buffer[-8:]


def stats(port: int, token: str = MJPEG_TOKEN) -> dict:
    request = urllib.request.Request(f'http://127.0.0.1:{port}/stats',
                                     headers={'Authorization': f'Bearer {token}'})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def status_of(url: str, headers: Optional[dict[str, str]] = None) -> int:
    """The HTTP status of a GET of ``url`` (the body is not read)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                    timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.fixture
def image_publisher(ros_node):
    """Publishes 320x240 rgb8 images at FPS from the test process."""
    pub = ros_node.node.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
    stop = threading.Event()

    def run() -> None:
        i = 0
        while not stop.is_set():
            rgb = np.full((240, 320, 3), i % 256, np.uint8)
            msg = Image(height=240, width=320, encoding='rgb8', step=960, data=rgb.tobytes())
            msg.header.stamp = ros_node.node.get_clock().now().to_msg()
            pub.publish(msg)
            i += 1
            stop.wait(1 / FPS)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield pub
    stop.set()
    thread.join()


def test_ten_viewers_full_rate_single_encode(streaming_node, image_publisher):
    _, port = streaming_node(mjpeg_max_fps=30.0)
    wait_until(lambda: stats(port)['frames_in'] >= 0, 10, 'stats')
    seconds = 4.0
    counts = [0] * 10
    viewers = [threading.Thread(target=count_frames, args=(port, seconds, counts, i))
               for i in range(10)]
    before = stats(port)
    for v in viewers:
        v.start()
    for v in viewers:
        v.join()
    after = stats(port)
    frames_served = after['frames_in'] - before['frames_in']
    encodes = after['jpeg_encodes'] - before['jpeg_encodes']
    # full rate: every viewer gets (nearly) every frame the node received
    assert frames_served >= 5, f'only {frames_served} frames reached the node'
    assert min(counts) >= frames_served * 0.85, f'frames per viewer: {counts} of {frames_served}'
    assert encodes <= frames_served + 1, f'{encodes} encodes for {frames_served} frames'
    assert max(counts) <= encodes + 1, 'every frame a viewer got was encoded once'


def test_stalled_viewer_does_not_slow_the_others(streaming_node, image_publisher):
    _, port = streaming_node()
    stalled = socket.create_connection(('127.0.0.1', port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(f'GET /stream.mjpg?token={MJPEG_TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n'
                    .encode())  # and never reads
    try:
        time.sleep(2.0)  # let its buffers fill
        counts = [0]
        before = stats(port)['frames_in']
        count_frames(port, 3.0, counts, 0)
        frames_in = stats(port)['frames_in'] - before
        assert frames_in >= 5, f'only {frames_in} frames reached the node'
        assert counts[0] >= frames_in * 0.85, f'{counts[0]} of {frames_in} frames'
    finally:
        stalled.close()


def test_no_viewer_no_encoding(streaming_node, image_publisher):
    _, port = streaming_node()
    time.sleep(2.0)
    assert stats(port)['jpeg_encodes'] == 0


def test_every_path_but_health_needs_the_token(streaming_node, image_publisher):
    _, port = streaming_node(access_token='s3cret')  # the parameter wins over the environment
    base = f'http://127.0.0.1:{port}'
    for path in ('/stream.mjpg', '/snapshot.jpg', '/stats'):
        assert status_of(base + path) == 401, path
        assert status_of(f'{base}{path}?token=wrong') == 401, path
        assert status_of(base + path, {'Authorization': 'Bearer wrong'}) == 401, path
        assert status_of(f'{base}{path}?token={MJPEG_TOKEN}') == 401, path
    assert status_of(base + '/health') == 200
    assert status_of(base + '/stats', {'Authorization': 'Bearer s3cret'}) == 200
    with urllib.request.urlopen(f'{base}/snapshot.jpg?token=s3cret', timeout=10) as r:
        assert r.status == 200 and r.read(2) == b'\xff\xd8'
    counts = [0]
    count_frames(port, 2.0, counts, 0, token='s3cret')
    assert counts[0] >= 3


def test_anonymous_viewers_only_by_explicit_choice_with_a_warning(streaming_node, image_publisher):
    node, port = streaming_node(allow_anonymous_viewers=True)
    node.wait_for_output(r'\[WARN\].*allow_anonymous_viewers is true', timeout=10)
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/snapshot.jpg', timeout=10) as r:
        assert r.status == 200 and r.read(2) == b'\xff\xd8'
    assert status_of(f'http://127.0.0.1:{port}/stats') == 200


def test_hub_caps_the_frame_rate_and_keeps_only_the_newest():
    hub = FrameHub(max_fps=10.0)
    assert hub.put(rgb=np.zeros((8, 8, 3), np.uint8))
    assert not hub.put(rgb=np.zeros((8, 8, 3), np.uint8))  # 0 ms later: over the cap
    sequence, jpeg = hub.latest_jpeg(0, timeout=1)
    assert jpeg.startswith(b'\xff\xd8') and hub.encodes == 1
    assert hub.latest_jpeg(0, timeout=1) == (sequence, jpeg) and hub.encodes == 1
    assert hub.latest_jpeg(sequence, timeout=0.05) is None
