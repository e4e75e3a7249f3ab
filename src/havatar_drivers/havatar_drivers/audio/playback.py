"""Audio sinks for the speaker node: ALSA (through ffmpeg), a WAV file, or nothing."""
from __future__ import annotations

import signal
import subprocess
import time
import wave
from pathlib import Path
from typing import Optional

from havatar_common.lifetime import preexec


class Sink:
    """Takes S16LE chunks; ``error`` is non-empty while the sink cannot play."""

    error = ''

    def write(self, pcm: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NullSink(Sink):
    def write(self, pcm: bytes) -> None:
        pass


class WavFileSink(Sink):
    """Appends what is played to a WAV file (for machines without a speaker, and tests)."""

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(str(path), 'wb')
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)

    def write(self, pcm: bytes) -> None:
        self._wav.writeframes(pcm)  # updates the header each time: readable while running

    def close(self) -> None:
        self._wav.close()


class AlsaSink(Sink):
    """ALSA playback through an ffmpeg process, restarted after a failure.

    ffmpeg is started by the first ``write`` and dies (SIGKILL) when the thread that wrote
    ends: call ``write`` from one thread that lives until ``close`` (the speaker node's
    playback thread), or ffmpeg is killed early and restarted by the next ``write``.
    """

    def __init__(self, device: str, rate: int, channels: int, ffmpeg: str = 'ffmpeg',
                 retry_period: float = 2.0) -> None:
        self.argv = [ffmpeg, '-hide_banner', '-nostdin', '-loglevel', 'error',
                     '-f', 's16le', '-ar', str(rate), '-ac', str(channels), '-i', '-',
                     '-f', 'alsa', device]
        self.device = device
        self.retry_period = retry_period
        self._retry_at = 0.0
        self._process: Optional[subprocess.Popen[bytes]] = None

    def write(self, pcm: bytes) -> None:
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                self.error = f'ALSA device {self.device}: {self._last_error()}'
                self._process = None
                self._retry_at = time.monotonic() + self.retry_period
            if time.monotonic() < self._retry_at:
                return  # audio is dropped while the device is failing
            try:
                self._process = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                                 stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                 preexec_fn=preexec(signal.SIGKILL))
            except OSError as exc:
                self.error = f'cannot run ffmpeg: {exc}'
                return
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(pcm)
            self._process.stdin.flush()
        except OSError:  # ffmpeg could not open the device and exited
            self._process.wait()
            self.error = f'ALSA device {self.device}: {self._last_error()}'
            self._process = None
            self._retry_at = time.monotonic() + self.retry_period

    def _last_error(self) -> str:
        assert self._process is not None and self._process.stderr is not None
        lines = self._process.stderr.read().decode(errors='replace').strip().splitlines()
        return lines[-1][:200] if lines else f'exited with {self._process.returncode}'

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
