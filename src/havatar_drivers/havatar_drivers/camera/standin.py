"""An MJPEG camera stand-in for tests and benchmarks (no V4L2 device needed).

Renders the stamped test pattern in real time (each frame carries the time it was drawn),
has ffmpeg encode it to JPEG (``-threads 1``: no frame waits in the encoder) and write the
JPEGs as a multipart stream into a FIFO, which the camera node reads with
``source:=mjpeg_stream device:=<fifo>``: whole JPEGs, one per part, as an MJPEG device
delivers them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from havatar_common.lifetime import preexec

from ..stamped_pattern import render


class MjpegCameraStandIn:
    """``start()`` makes the FIFO and begins feeding it; ``stop()`` ends both."""

    def __init__(self, fifo: Path, width: int = 640, height: int = 480, fps: float = 30.0,
                 quality: int = 5, ffmpeg: str = 'ffmpeg') -> None:
        self.fifo = fifo
        self.width, self.height, self.fps = width, height, fps
        self.quality = quality  # ffmpeg -q:v (2 best .. 31 worst)
        self.ffmpeg = ffmpeg
        self.frames = 0
        self._stop = threading.Event()
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._thread = threading.Thread(target=self._run, name='mjpeg-standin', daemon=True)

    def start(self) -> 'MjpegCameraStandIn':
        os.mkfifo(self.fifo)
        self._process = subprocess.Popen(
            [self.ffmpeg, '-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'rawvideo',
             '-pix_fmt', 'rgb24', '-video_size', f'{self.width}x{self.height}',
             '-framerate', f'{self.fps:g}', '-i', '-', '-c:v', 'mjpeg', '-q:v', str(self.quality),
             '-threads', '1', '-f', 'mpjpeg', '-flush_packets', '1', '-y', str(self.fifo)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=preexec(signal.SIGKILL))
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._process is not None and self._process.stdin is not None
        period = 1.0 / self.fps
        next_time = time.monotonic()
        while not self._stop.is_set():
            frame = render(self.width, self.height, self.frames, time.time_ns())
            try:
                self._process.stdin.write(frame.tobytes())
                self._process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                return
            self.frames += 1
            next_time += period
            delay = next_time - time.monotonic()
            if delay < -period:
                next_time = time.monotonic()
            self._stop.wait(max(0.0, delay))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        if self._process is not None:
            if self._process.stdin is not None:
                try:
                    self._process.stdin.close()
                except OSError:
                    pass
            self._process.kill()
            self._process.wait()
        try:
            self.fifo.unlink()
        except FileNotFoundError:
            pass
