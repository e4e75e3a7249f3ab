"""The test pattern's embedded frame number and capture time survive JPEG, H.264 and scaling."""
from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
from PIL import Image

from havatar_drivers.stamped_pattern import PatternStamp, decode, render
from havatar_testing import find_program

STAMP_NS = 1_795_000_000_123_000_000  # ms resolution


def test_round_trip():
    assert decode(render(640, 480, 4242, STAMP_NS), now_ns=STAMP_NS) == PatternStamp(4242, STAMP_NS)


def test_time_is_resolved_against_the_receivers_clock():
    later = STAMP_NS + 3_600 * 10**9
    assert decode(render(640, 480, 1, STAMP_NS), now_ns=later).stamp_ns == STAMP_NS


@pytest.mark.parametrize('quality', [30, 50, 80])
def test_decodes_after_jpeg(quality):
    out = io.BytesIO()
    Image.fromarray(render(640, 480, 77, STAMP_NS)).save(out, 'JPEG', quality=quality)
    assert decode(np.array(Image.open(out)), now_ns=STAMP_NS) == PatternStamp(77, STAMP_NS)


@pytest.mark.parametrize('size', [(320, 240), (1280, 720), (160, 120)])
def test_decodes_after_scaling(size):
    scaled = np.array(Image.fromarray(render(640, 480, 9, STAMP_NS)).resize(size, Image.BILINEAR))
    assert decode(scaled, now_ns=STAMP_NS) == PatternStamp(9, STAMP_NS)


def test_decodes_after_h264_encode_and_decode():
    frames = 45
    stamps = [STAMP_NS + i * 33_000_000 for i in range(frames)]
    raw = b''.join(render(640, 480, i, s).tobytes() for i, s in enumerate(stamps))
    ffmpeg = find_program('ffmpeg')
    h264 = subprocess.run(
        [ffmpeg, '-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', '640x480', '-r', '30',
         '-i', '-', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency',
         '-b:v', '1M', '-g', '30', '-f', 'h264', '-'],
        input=raw, capture_output=True, check=True, timeout=60).stdout
    decoded = subprocess.run(
        [ffmpeg, '-v', 'error', '-f', 'h264', '-i', '-', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
        input=h264, capture_output=True, check=True, timeout=60).stdout
    images = np.frombuffer(decoded, np.uint8).reshape(-1, 480, 640, 3)
    assert len(images) == frames
    results = [decode(img, now_ns=stamps[-1]) for img in images]
    assert results == [PatternStamp(i, s // 10**6 * 10**6) for i, s in enumerate(stamps)]


def test_damaged_code_is_rejected_not_misread():
    image = render(640, 480, 5, STAMP_NS)
    image[:120, 200:240] = 255 - image[:120, 200:240]  # flip two columns of cells
    assert decode(image, now_ns=STAMP_NS) is None
    assert decode(np.zeros((480, 640, 3), np.uint8)) is None


def test_pattern_moves():
    assert not np.array_equal(render(320, 240, 1, STAMP_NS)[120:], render(320, 240, 2, STAMP_NS)[120:])
