"""A moving test pattern that carries its own capture time and frame number in the pixels.

The top quarter of the image is a grid of 4 x 20 black or white cells: an 8-bit sync
word, the frame number (24 bits), the capture time in milliseconds since the Unix epoch
modulo 2**40 (about 35 years, resolved against the receiver's clock), and a CRC-8. Cells
that large survive JPEG, H.264 at low bit rates and scaling; the CRC makes ``decode``
return None instead of a wrong value. Below the code, moving bars and a bouncing block give
encoders real motion to work on. Pure numpy: no ROS.
"""
from __future__ import annotations

import time
from typing import NamedTuple, Optional

import numpy as np

ROWS, COLS = 4, 20
SYNC = 0b10110010
FRAME_BITS, TIME_BITS = 24, 40
TIME_MOD_MS = 1 << TIME_BITS
CODE_HEIGHT_FRACTION = 0.25
BAR_COLOURS = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                        [255, 0, 255], [255, 0, 0], [0, 0, 255], [40, 40, 40]], dtype=np.uint8)


class PatternStamp(NamedTuple):
    frame_number: int
    stamp_ns: int  # capture time, ns since the Unix epoch (ms resolution)


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _payload(frame_number: int, stamp_ms: int) -> bytes:
    return ((frame_number % (1 << FRAME_BITS)) << TIME_BITS | (stamp_ms % TIME_MOD_MS)).to_bytes(8, 'big')


def _bits(frame_number: int, stamp_ns: int) -> np.ndarray:
    payload = _payload(frame_number, stamp_ns // 1_000_000)
    word = bytes([SYNC]) + payload + bytes([_crc8(payload)])
    return np.unpackbits(np.frombuffer(word, dtype=np.uint8))[:ROWS * COLS]


def _cell_edges(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    code_height = int(height * CODE_HEIGHT_FRACTION)
    return (np.linspace(0, width, COLS + 1).astype(int),
            np.linspace(0, code_height, ROWS + 1).astype(int))


def render(width: int, height: int, frame_number: int, stamp_ns: int) -> np.ndarray:
    """The pattern for one frame: an ``height x width x 3`` uint8 RGB image."""
    if width < COLS * 4 or height < ROWS * 16:
        raise ValueError(f'test pattern needs at least {COLS * 4}x{ROWS * 16} pixels')
    image = np.empty((height, width, 3), dtype=np.uint8)
    xs, ys = _cell_edges(width, height)
    code_bottom = ys[-1]
    # moving colour bars
    bar_width = max(1, width // len(BAR_COLOURS))
    columns = ((np.arange(width) + frame_number * 4) // bar_width) % len(BAR_COLOURS)
    image[code_bottom:] = BAR_COLOURS[columns][np.newaxis]
    # a block bouncing across the bars
    size = max(8, height // 8)
    span_x, span_y = max(1, width - size), max(1, height - code_bottom - size)
    x = abs((frame_number * 7) % (2 * span_x) - span_x)
    y = code_bottom + abs((frame_number * 5) % (2 * span_y) - span_y)
    image[y:y + size, x:x + size] = (255, 128, 0)
    # the code
    bits = _bits(frame_number, stamp_ns).reshape(ROWS, COLS)
    for r in range(ROWS):
        for c in range(COLS):
            image[ys[r]:ys[r + 1], xs[c]:xs[c + 1]] = 255 if bits[r, c] else 0
    return image


def decode(rgb: np.ndarray, now_ns: Optional[int] = None) -> Optional[PatternStamp]:
    """Read the frame number and capture time back from a (possibly re-encoded) frame."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        return None
    height, width = rgb.shape[:2]
    if width < COLS * 4 or height < ROWS * 16:
        return None
    xs, ys = _cell_edges(width, height)
    band = rgb[:ys[-1], :, :3].astype(np.float32)
    luma = band @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    bits = np.zeros(ROWS * COLS, dtype=np.uint8)
    for r in range(ROWS):
        for c in range(COLS):
            # the middle half of each cell: edges blur under compression and scaling
            x0, x1 = xs[c], xs[c + 1]
            y0, y1 = ys[r], ys[r + 1]
            qx, qy = (x1 - x0) // 4, (y1 - y0) // 4
            bits[r * COLS + c] = luma[y0 + qy:y1 - qy, x0 + qx:x1 - qx].mean() > 128
    word = np.packbits(bits).tobytes()
    if word[0] != SYNC or _crc8(word[1:9]) != word[9]:
        return None
    value = int.from_bytes(word[1:9], 'big')
    frame_number = value >> TIME_BITS
    code_ms = value & (TIME_MOD_MS - 1)
    now_ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    # the latest time with these low bits that is not after now (plus 1 s of clock slack)
    stamp_ms = now_ms + 1000 - ((now_ms + 1000 - code_ms) % TIME_MOD_MS)
    return PatternStamp(frame_number, stamp_ms * 1_000_000)
