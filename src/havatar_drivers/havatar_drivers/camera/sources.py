"""Where camera frames come from. A source runs its own thread and hands each frame
(RGB numpy array + capture time, or for an MJPEG camera its own JPEG) to a callback; it
reports its state for diagnostics.
"""
from __future__ import annotations

import glob
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..ffmpeg_pipe import FfmpegPipe
from .jpeg_stream import JpegSplitter
from ..stamped_pattern import render

FrameCallback = Callable[[np.ndarray, int, int], None]  # (rgb, capture time ns, frame number)
JpegCallback = Callable[[bytes, int, int], None]  # (the camera's JPEG, capture time ns, frame number)


@dataclass
class SourceState:
    """What diagnostics report about a source."""

    ok: bool = False
    message: str = 'starting'
    device: str = ''
    opens: int = 0


class FrameSource:
    """Base: a thread that calls ``on_frame`` until ``stop``."""

    def __init__(self, width: int, height: int, fps: float, on_frame: FrameCallback) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.on_frame = on_frame
        self.state = SourceState()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError


class PatternSource(FrameSource):
    """The test pattern at the configured rate, stamped with the time it was drawn."""

    def _run(self) -> None:
        self.state = SourceState(ok=True, message='test pattern', device='test_pattern', opens=1)
        period = 1.0 / self.fps
        next_time = time.monotonic()
        frame_number = 0
        while not self._stop.is_set():
            stamp = time.time_ns()
            self.on_frame(render(self.width, self.height, frame_number, stamp), stamp, frame_number)
            frame_number += 1
            next_time += period
            delay = next_time - time.monotonic()
            if delay < -period:  # fell behind (busy machine): do not burst to catch up
                next_time = time.monotonic()
            self._stop.wait(max(0.0, delay))


def find_video_device(spec: str) -> Optional[str]:
    """A V4L2 device path for ``spec``: a path, or a (part of a) device or by-id name."""
    if spec.startswith('/'):
        return spec if os.path.exists(spec) else None
    for path in sorted(glob.glob('/dev/v4l/by-id/*')):
        if spec in os.path.basename(path):
            return path
    for name_file in sorted(glob.glob('/sys/class/video4linux/video*/name')):
        if spec.lower() in Path(name_file).read_text().strip().lower():
            return '/dev/' + Path(name_file).parent.name
    return None


class FfmpegSource(FrameSource):
    """Frames decoded by an ffmpeg process to raw RGB on a pipe; restarted when it ends.

    ``input_args`` is what ffmpeg reads (for a camera: ``-f v4l2 ... -i /dev/video0``).
    A device that disappears makes ffmpeg exit: the state says so and the source retries
    every ``retry_period`` until the device is back.
    """

    def __init__(self, width: int, height: int, fps: float, on_frame: FrameCallback,
                 input_args: Callable[[], Optional[list[str]]], retry_period: float = 2.0,
                 ffmpeg: str = 'ffmpeg') -> None:
        super().__init__(width, height, fps, on_frame)
        self.input_args = input_args
        self.retry_period = retry_period
        self.ffmpeg = ffmpeg
        self._pipe: Optional[FfmpegPipe] = None

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._pipe is not None:
            self._pipe.terminate()
        self._thread.join(timeout)

    def _run(self) -> None:
        frame_number = 0
        while not self._stop.is_set():
            args = self.input_args()
            if args is None:
                self.state.ok, self.state.message = False, 'device not found'
                self._stop.wait(self.retry_period)
                continue
            frame_number = self._capture(args, frame_number)
            if not self._stop.is_set():
                self._stop.wait(self.retry_period)

    def _output_args(self) -> list[str]:
        return ['-vf', f'scale={self.width}:{self.height}', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']

    def _frames(self, pipe: FfmpegPipe) -> Iterator[tuple[Any, int]]:
        """(frame, capture time ns) as ffmpeg delivers them."""
        for data in pipe.blocks(self.width * self.height * 3):
            stamp = time.time_ns()  # when the frame left the device's driver, near enough
            yield np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, 3), stamp

    def _capture(self, args: list[str], frame_number: int) -> int:
        argv = [self.ffmpeg, '-hide_banner', '-nostdin', '-loglevel', 'error', *args,
                *self._output_args()]
        self._pipe = pipe = FfmpegPipe(argv)
        try:  # on the source's thread, which reads and closes this ffmpeg before it ends
            pipe.open()
        except OSError as exc:
            self.state.ok, self.state.message = False, f'cannot run ffmpeg: {exc}'
            return frame_number
        self.state.opens += 1
        for frame, stamp in self._frames(pipe):
            if self._stop.is_set():
                break
            self.state.ok, self.state.message = True, 'capturing'
            self.on_frame(frame, stamp, frame_number)
            frame_number += 1
        reason = pipe.close()
        if not self._stop.is_set():
            self.state.ok, self.state.message = False, f'capture stopped: {reason}'
        return frame_number


class MjpegSource(FfmpegSource):
    """An MJPEG camera's own JPEGs, copied by ffmpeg without decoding (``-c:v copy``).

    ``on_frame`` gets each JPEG as bytes the moment its last byte arrives. The size is the
    camera's: ffmpeg cannot scale what it does not decode.
    """

    def __init__(self, width: int, height: int, fps: float, on_jpeg: JpegCallback,
                 input_args: Callable[[], Optional[list[str]]], retry_period: float = 2.0,
                 ffmpeg: str = 'ffmpeg') -> None:
        super().__init__(width, height, fps, on_jpeg, input_args,  # type: ignore[arg-type]
                         retry_period=retry_period, ffmpeg=ffmpeg)

    def _output_args(self) -> list[str]:
        return ['-c:v', 'copy', '-f', 'mjpeg', '-flush_packets', '1', '-']

    def _frames(self, pipe: FfmpegPipe) -> Iterator[tuple[Any, int]]:
        splitter = JpegSplitter()
        for chunk in pipe.chunks():
            stamp = time.time_ns()
            for jpeg in splitter.feed(chunk):
                yield jpeg, stamp


def mjpeg_stream_input(path: str) -> Callable[[], Optional[list[str]]]:
    """Ffmpeg input arguments for a multipart-JPEG stream (a file or FIFO) standing in for
    an MJPEG camera: whole JPEGs per part, as a V4L2 MJPEG device delivers them.
    """
    def args() -> Optional[list[str]]:
        return ['-f', 'mpjpeg', '-i', path] if os.path.exists(path) else None
    return args


def v4l2_input(device: str, width: int, height: int, fps: float,
               pixel_format: str) -> Callable[[], Optional[list[str]]]:
    """Ffmpeg input arguments for a V4L2 device, resolved anew at every (re)open."""
    def args() -> Optional[list[str]]:
        path = find_video_device(device)
        if path is None:
            return None
        fmt = ['-input_format', pixel_format] if pixel_format else []
        return ['-f', 'v4l2', *fmt, '-video_size', f'{width}x{height}',
                '-framerate', f'{fps:g}', '-i', path]
    return args
