"""An ffmpeg process that writes raw data to a pipe, read in fixed-size blocks.

Camera and microphone capture both run ffmpeg this way: when the device fails ffmpeg
ends, ``blocks`` stops, and ``close`` returns the last line ffmpeg printed as the reason.
ffmpeg is SIGKILLed by the kernel if the thread that opened it ends first (the node was
killed): open, read and close from one thread, as the capture sources do.
"""
from __future__ import annotations

import signal
import subprocess
import threading
from typing import Iterator, Optional

from havatar_common.lifetime import preexec


class FfmpegPipe:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._lock = threading.Lock()

    def open(self) -> None:
        """Start ffmpeg; raises OSError when it cannot run.

        Call it from the thread that reads ``blocks`` and calls ``close``: ffmpeg dies when
        that thread ends (SIGKILL: with nobody reading, there is nothing to finish).
        """
        with self._lock:
            self._process = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             stdin=subprocess.DEVNULL, preexec_fn=preexec(signal.SIGKILL))

    def blocks(self, size: int) -> Iterator[bytes]:
        """Blocks of exactly ``size`` bytes until ffmpeg ends or ``terminate`` is called."""
        assert self._process is not None and self._process.stdout is not None
        while True:
            data = self._process.stdout.read(size)
            if len(data) < size:
                return
            yield data

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        """Whatever ffmpeg wrote, as soon as it wrote it (up to ``size`` bytes at a time)."""
        assert self._process is not None and self._process.stdout is not None
        while True:
            data = self._process.stdout.read1(size)
            if not data:
                return
            yield data

    def terminate(self) -> None:
        """Ask ffmpeg to end (safe from any thread)."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()

    def close(self) -> str:
        """End ffmpeg and return why it ended (its last message, or 'ended')."""
        assert self._process is not None
        self.terminate()
        try:
            _, err = self._process.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _, err = self._process.communicate()
        lines = err.decode(errors='replace').strip().splitlines()
        return lines[-1][:200] if lines else 'ended'
