"""The speaker node's speech as its WAV file sink holds it: start the node, cut the sink
into what each text added.
"""
from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from havatar_bringup.processes import wait_until
from .ros import ros_executable

RATE = 48000  # the speaker node's default sample rate


def start_speaker(processes: Any, wav_path: Path, *params: str) -> Any:
    """A speaker_node playing into ``wav_path``; ``params`` are 'name:=value' pairs."""
    args = ['-p', 'sink:=file', '-p', f'file:={wav_path}', '-p', 'diagnostics_period:=0.3']
    for param in params:
        args += ['-p', param]
    node = processes.start('speaker_node', [ros_executable('havatar_drivers', 'speaker_node'),
                                            '--ros-args', *args])
    node.wait_for_output('playing', timeout=20)
    return node


class SinkWatch:
    """What the WAV sink gained since the last look (the node writes only while it plays)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mark = 0  # frames already handed out

    def frames(self) -> int:
        if not self.path.exists():
            return 0
        try:
            with wave.open(str(self.path)) as wav:  # the sink rewrites the header on each write
                return wav.getnframes()
        except (EOFError, wave.Error):
            return 0

    def samples(self, start: int, end: int) -> np.ndarray:
        with wave.open(str(self.path)) as wav:
            wav.setpos(start)
            return np.frombuffer(wav.readframes(end - start), '<i2')

    def wait_for_start(self, timeout: float = 30.0) -> None:
        wait_until(lambda: self.frames() > self.mark, timeout=timeout, what='speech in the sink')

    def wait_quiet(self, quiet: float = 0.6, timeout: float = 60.0) -> int:
        """Wait until the sink has not grown for ``quiet`` seconds; its frames then."""
        deadline = time.monotonic() + timeout
        last, since = self.frames(), time.monotonic()
        while time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                raise TimeoutError(f'the sink kept growing for {timeout} s')
            time.sleep(0.02)
            now = self.frames()
            if now != last:
                last, since = now, time.monotonic()
        return last

    def next_segment(self, timeout: float = 30.0) -> np.ndarray:
        """The samples of the next text spoken: from the sink's growth to its next quiet."""
        self.wait_for_start(timeout)
        end = self.wait_quiet(timeout=timeout * 2)
        segment = self.samples(self.mark, end)
        self.mark = end
        return segment


def same_speech(segment: np.ndarray, expected: bytes) -> bool:
    """Whether ``segment`` starts with exactly the speech ``expected`` (the sink pads the end
    of a piece with silence to its 20 ms chunk).
    """
    want = np.frombuffer(expected, '<i2')
    return len(want) <= len(segment) <= len(want) + RATE // 50 * 4 and \
        np.array_equal(segment[:len(want)], want)


def loudness(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(float) ** 2))) if len(samples) else 0.0
