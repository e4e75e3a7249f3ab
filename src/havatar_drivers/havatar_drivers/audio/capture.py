"""Audio sources for the microphone node: ALSA (through ffmpeg), a tone, a WAV file.

Each runs a thread that calls ``on_chunk(pcm, capture_time_ns)`` with exactly one chunk
of S16LE PCM at a time, paced in real time.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..ffmpeg_pipe import FfmpegPipe
from .pcm import convert, read_wav, tone

ChunkCallback = Callable[[bytes, int], None]


@dataclass
class AudioState:
    ok: bool = False
    message: str = 'starting'
    chunks: int = 0
    opens: int = 0


class AudioSource:
    """Base: ``rate``/``channels`` of the output, ``chunk_frames`` frames per chunk."""

    def __init__(self, rate: int, channels: int, chunk_frames: int, on_chunk: ChunkCallback) -> None:
        self.rate, self.channels, self.chunk_frames = rate, channels, chunk_frames
        self.chunk_bytes = chunk_frames * channels * 2
        self.on_chunk = on_chunk
        self.state = AudioState()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError


class GeneratedSource(AudioSource):
    """Emits chunks of ``generate(first_frame, count)`` on a real-time sample clock."""

    def __init__(self, rate: int, channels: int, chunk_frames: int, on_chunk: ChunkCallback,
                 generate: Callable[[int, int], bytes], description: str) -> None:
        super().__init__(rate, channels, chunk_frames, on_chunk)
        self.generate = generate
        self.description = description

    def _run(self) -> None:
        self.state = AudioState(ok=True, message=self.description, opens=1)
        start = time.monotonic()
        start_ns = time.time_ns()
        frame = 0
        period = self.chunk_frames / self.rate
        while not self._stop.is_set():
            due = start + (frame + self.chunk_frames) / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
                continue
            # the chunk's first sample was captured one chunk before it is complete
            self.on_chunk(self.generate(frame, self.chunk_frames),
                          start_ns + int(frame / self.rate * 1e9))
            frame += self.chunk_frames
            self.state.chunks += 1
            if -delay > 10 * period:  # far behind (stalled machine): skip, do not burst
                frame = int((time.monotonic() - start) * self.rate) // self.chunk_frames * self.chunk_frames


def tone_source(rate: int, channels: int, chunk_frames: int, on_chunk: ChunkCallback,
                frequency: float) -> GeneratedSource:
    return GeneratedSource(rate, channels, chunk_frames, on_chunk,
                           lambda first, count: tone(frequency, rate, first, count, channels),
                           f'{frequency:g} Hz tone')


def file_source(rate: int, channels: int, chunk_frames: int, on_chunk: ChunkCallback,
                path: Path) -> GeneratedSource:
    """A WAV file, converted to the output format and looped."""
    frames, file_rate, file_channels = read_wav(path.read_bytes())
    pcm = convert(frames, file_rate, file_channels, rate, channels)
    if not pcm:
        raise ValueError(f'{path} holds no audio')
    frame_bytes = 2 * channels

    def generate(first: int, count: int) -> bytes:
        total = len(pcm) // frame_bytes
        out = b''
        position = first % total
        while len(out) < count * frame_bytes:
            take = min(count - len(out) // frame_bytes, total - position)
            out += pcm[position * frame_bytes:(position + take) * frame_bytes]
            position = (position + take) % total
        return out

    return GeneratedSource(rate, channels, chunk_frames, on_chunk, generate, f'file {path.name}')


class AlsaSource(AudioSource):
    """ALSA capture through an ffmpeg process; reopened when the device fails."""

    def __init__(self, rate: int, channels: int, chunk_frames: int, on_chunk: ChunkCallback,
                 device: str, retry_period: float = 2.0, ffmpeg: str = 'ffmpeg') -> None:
        super().__init__(rate, channels, chunk_frames, on_chunk)
        self.device = device
        self.retry_period = retry_period
        self.ffmpeg = ffmpeg
        self._pipe: Optional[FfmpegPipe] = None

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._pipe is not None:
            self._pipe.terminate()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._capture()
            self._stop.wait(self.retry_period)

    def _capture(self) -> None:
        argv = [self.ffmpeg, '-hide_banner', '-nostdin', '-loglevel', 'error',
                '-f', 'alsa', '-ac', str(self.channels), '-ar', str(self.rate), '-i', self.device,
                '-f', 's16le', '-ac', str(self.channels), '-ar', str(self.rate), '-']
        self._pipe = pipe = FfmpegPipe(argv)
        try:  # on the source's thread, which reads and closes this ffmpeg before it ends
            pipe.open()
        except OSError as exc:
            self.state.ok, self.state.message = False, f'cannot run ffmpeg: {exc}'
            return
        self.state.opens += 1
        for data in pipe.blocks(self.chunk_bytes):
            if self._stop.is_set():
                break
            stamp = time.time_ns() - int(self.chunk_frames / self.rate * 1e9)
            self.state.ok, self.state.message = True, f'capturing from {self.device}'
            self.on_chunk(data, stamp)
            self.state.chunks += 1
        reason = pipe.close()
        if not self._stop.is_set():
            self.state.ok, self.state.message = False, f'ALSA device {self.device}: {reason}'
