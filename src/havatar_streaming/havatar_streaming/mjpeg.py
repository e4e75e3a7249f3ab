"""One JPEG per frame for any number of MJPEG viewers (thread-safe, no ROS).

The newest frame is kept, raw or already compressed. The first viewer that asks for a
frame encodes it; the others get the same bytes. Nobody watching: nothing is encoded.
A slow viewer simply gets the newest frame when it is ready again, so it never slows the
others and memory stays at one frame.
"""
from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image


@dataclass
class Frame:
    sequence: int
    stamp: float
    rgb: Optional[np.ndarray] = None
    jpeg: Optional[bytes] = None


class FrameHub:
    def __init__(self, quality: int = 80, max_fps: float = 30.0) -> None:
        self.quality = quality
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self._cond = threading.Condition()
        self._frame: Optional[Frame] = None
        self._encode_lock = threading.Lock()
        self._last_accept = 0.0
        self.encodes = 0
        self.frames_in = 0
        self.viewers = 0

    def put(self, rgb: Optional[np.ndarray] = None, jpeg: Optional[bytes] = None) -> bool:
        """Offer a new frame; False when it came sooner than the frame-rate cap allows."""
        now = time.monotonic()
        with self._cond:
            if now - self._last_accept < self.min_interval * 0.9:
                return False
            self._last_accept = now
            sequence = self._frame.sequence + 1 if self._frame else 1
            self._frame = Frame(sequence, now, rgb=rgb, jpeg=jpeg)
            self.frames_in += 1
            self._cond.notify_all()
        return True

    def wanted(self) -> bool:
        """True while someone watches (the node can skip work otherwise)."""
        return self.viewers > 0

    def latest_jpeg(self, after: int = 0, timeout: float = 5.0) -> Optional[tuple[int, bytes]]:
        """The newest frame with sequence > ``after`` as JPEG, waiting up to ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._frame is not None and self._frame.sequence > after,
                                       timeout):
                return None
            frame = self._frame
        assert frame is not None
        with self._encode_lock:
            if frame.jpeg is None:
                assert frame.rgb is not None
                out = io.BytesIO()
                Image.fromarray(frame.rgb).save(out, format='JPEG', quality=self.quality)
                frame.jpeg = out.getvalue()
                frame.rgb = None
                self.encodes += 1
        return frame.sequence, frame.jpeg
