"""Talkback: the audio a browser publishes (WHIP) to the robot's talk path, read back as PCM.

An ffmpeg process reads the path over RTSP, through a local ``RtspAuthHop`` that adds the
credentials (none on ffmpeg's command line), and decodes it to 48 kHz mono S16LE; every
20 ms chunk goes to ``on_chunk``. Nobody talking means the path does not exist: ffmpeg
ends and is tried again every ``retry_period``, quietly.
"""
from __future__ import annotations

import signal
import subprocess
import threading
from typing import Callable, Optional

from havatar_common.audio import PCM_CHANNELS, PCM_RATE
from havatar_common.lifetime import preexec

from .rtsp_auth_hop import RtspAuthHop

CHUNK_BYTES = 960 * 2  # 20 ms at 48 kHz mono


class TalkbackReader:
    def __init__(self, hop: RtspAuthHop, path: str, on_chunk: Callable[[bytes], None],
                 retry_period: float = 2.0, ffmpeg: str = 'ffmpeg') -> None:
        self.hop = hop  # started and stopped with the reader
        self.path = path
        self.on_chunk = on_chunk
        self.retry_period = retry_period
        self.ffmpeg = ffmpeg
        self.chunks = 0
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='talkback', daemon=True)

    def start(self) -> None:
        self.hop.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
        self._thread.join(timeout=5)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self.hop.stop()

    def _run(self) -> None:
        argv = [self.ffmpeg, '-hide_banner', '-nostdin', '-loglevel', 'error',
                '-rtsp_transport', 'tcp', '-fflags', 'nobuffer', '-i', self.hop.url(self.path),
                '-vn', '-f', 's16le', '-ar', str(PCM_RATE), '-ac', str(PCM_CHANNELS), '-']
        while not self._stop.is_set():
            # this thread waits for every ffmpeg it starts, so ffmpeg never needs to outlive
            # it; SIGKILLed when the thread ends (the node was killed)
            self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, start_new_session=True,
                                             preexec_fn=preexec(signal.SIGKILL))
            assert self._process.stdout is not None
            while not self._stop.is_set():
                data = self._process.stdout.read(CHUNK_BYTES)
                if len(data) < CHUNK_BYTES:
                    break
                self.on_chunk(data)
                self.chunks += 1
            self._process.terminate()
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._stop.wait(self.retry_period)
