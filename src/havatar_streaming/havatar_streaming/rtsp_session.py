"""An RTSP publish session (server mode): one ffmpeg process encoding H.264 + Opus and
publishing them to MediaMTX over RTSP.

ffmpeg publishes through a local ``RtspAuthHop``, which adds the credentials: the
password never appears on ffmpeg's command line. Video frames go to ffmpeg's stdin as
raw RGB, audio to a FIFO as S16LE; each has a
writer thread holding only the newest data, so a slow or stuck ffmpeg never blocks the
ROS callbacks and never builds a queue. Audio is written on a real-time clock (silence
when the microphone is quiet) because ffmpeg waits for every input it reads.
"""
from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import quote, urlsplit

import numpy as np

from havatar_common.audio import PCM_CHANNELS, PCM_RATE, PCM_SAMPLE_BYTES
from havatar_common.lifetime import preexec

from .rtsp_auth_hop import RtspAuthHop, default_port

AUDIO_CHUNK_S = 0.02
AUDIO_CHUNK_BYTES = int(PCM_RATE * AUDIO_CHUNK_S) * PCM_CHANNELS * PCM_SAMPLE_BYTES
# a session starts when a viewer arrives (encoding on demand): key frames every
# START_KEY_INTERVAL s for its first START_KEY_SPAN s, so a reader that joins a moment after
# the first key frame does not wait a whole GOP for the next one
START_KEY_SPAN = 3.0
START_KEY_INTERVAL = 0.25
INPUT_AGE_WINDOW = 90  # frames (3 s at 30 Hz) behind input_age_ms
AUDIO_QUEUE_MAX = 2  # chunks (40 ms): beyond this the oldest are dropped, so no standing delay builds up


def trim_backlog(queue: deque[bytes], keep: int = AUDIO_QUEUE_MAX) -> int:
    """Drop the oldest chunks beyond ``keep``; return how many.

    The writer drains one chunk per 20 ms, as fast as they come: a backlog (ffmpeg opening
    its FIFO late, a stall) would otherwise delay every later chunk for good.
    """
    dropped = 0
    while len(queue) > keep:
        queue.popleft()
        dropped += 1
    return dropped


@dataclass(frozen=True)
class PublishSettings:
    server_url: str           # rtsp://host:port or rtsps://host:port
    path: str                 # the robot's path on MediaMTX
    user: str
    password: str = field(repr=False)
    width: int = 640
    height: int = 480
    fps: float = 30.0
    encoder: str = 'libx264'  # or h264_v4l2m2m (Raspberry Pi 4), h264_vaapi, ...
    video_bitrate_kbps: int = 1000
    gop: int = 30
    audio: bool = True
    audio_bitrate_kbps: int = 64
    ca_file: str = ''         # PEM CA trusted for rtsps:// ('' = the system's trust store)

    def url(self, with_password: bool = True) -> str:
        """The server URL with the credentials (for logs: ``with_password=False``)."""
        parts = urlsplit(self.server_url)
        secret = quote(self.password, safe='') if with_password else '***'
        auth = f'{quote(self.user, safe="")}:{secret}@' if self.user else ''
        return f'{parts.scheme}://{auth}{parts.hostname}:{parts.port or default_port(parts.scheme)}/{self.path}'


def ffmpeg_argv(s: PublishSettings, url: str, audio_fifo: Optional[str],
                ffmpeg: str = 'ffmpeg') -> list[str]:
    """The command line of ffmpeg publishing to ``url`` (the hop's: it holds no password)."""
    argv = [ffmpeg, '-hide_banner', '-nostdin', '-loglevel', 'warning', '-stats_period', '0.5',
            '-progress', 'pipe:2',
            '-use_wallclock_as_timestamps', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24',
            '-s', f'{s.width}x{s.height}']
    # A thread queue makes ffmpeg (up to 5.1) read its inputs in threads and poll them,
    # sleeping 10 ms whenever none has data: about 5 ms more glass-to-glass at p50
    # (streaming_benchmark.py). Two inputs always get threads; one alone is read directly.
    argv += (['-thread_queue_size', '64'] if audio_fifo else []) + ['-i', 'pipe:0']
    if audio_fifo:
        argv += ['-use_wallclock_as_timestamps', '1', '-f', 's16le', '-ar', str(PCM_RATE),
                 '-ac', str(PCM_CHANNELS), '-thread_queue_size', '256', '-i', audio_fifo]
    video = ['-c:v', s.encoder, '-b:v', f'{s.video_bitrate_kbps}k',
             '-maxrate', f'{s.video_bitrate_kbps}k', '-bufsize', f'{s.video_bitrate_kbps // 2}k',
             '-g', str(s.gop), '-bf', '0',
             '-force_key_frames', f'expr:if(lt(t,{START_KEY_SPAN}),gte(t,n_forced*{START_KEY_INTERVAL}),0)',
             '-pix_fmt', 'yuv420p', '-fps_mode', 'passthrough']
    if s.encoder == 'libx264':
        video += ['-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline']
    argv += ['-map', '0:v'] + video
    if audio_fifo:
        argv += ['-map', '1:a', '-c:a', 'libopus', '-b:a', f'{s.audio_bitrate_kbps}k',
                 '-application', 'lowdelay', '-frame_duration', '20']
    argv += ['-f', 'rtsp', '-rtsp_transport', 'tcp', url]
    return argv


class RtspSession:
    """Runs the ffmpeg publish session; ``alive()`` and ``last_output`` tell its health."""

    def __init__(self, settings: PublishSettings, ffmpeg: str = 'ffmpeg') -> None:
        self.settings = settings
        self.ffmpeg = ffmpeg
        self._dir = tempfile.mkdtemp(prefix='havatar-publish-')
        self._fifo = os.path.join(self._dir, 'audio.s16') if settings.audio else None
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._hop = RtspAuthHop(settings.server_url, settings.user, settings.password,
                                settings.ca_file)
        self._video: Optional[tuple[bytes, Optional[int]]] = None  # the newest frame, its capture time
        self._video_event = threading.Event()
        self._input_ages: deque[float] = deque(maxlen=INPUT_AGE_WINDOW)
        self._audio: deque[bytes] = deque(maxlen=25)  # at most 0.5 s of microphone audio
        self.audio_dropped = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.frames_written = 0
        self.last_progress = 0.0
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.bitrate_kbps = 0.0
        self.fps = 0.0

    def start(self) -> None:
        """Start ffmpeg. It is SIGKILLed when the calling thread ends: call ``start`` and
        ``stop`` from a thread that lives as long as the session (the streaming node's
        supervisor). A killed ffmpeg's TCP connection closes, so MediaMTX notices at once.
        """
        if self._fifo:
            os.mkfifo(self._fifo)
        self._hop.start()
        self._process = subprocess.Popen(
            ffmpeg_argv(self.settings, self._hop.url(self.settings.path), self._fifo, self.ffmpeg),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=preexec(signal.SIGKILL))
        self.last_progress = time.monotonic()
        targets = [self._write_video, self._read_progress] + ([self._write_audio] if self._fifo else [])
        self._threads = [threading.Thread(target=t, daemon=True, name=f'publish-{t.__name__}')
                         for t in targets]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop writing, close ffmpeg's inputs (so it ends at once rather than waiting in a
        read), then terminate it.
        """
        self._stop.set()
        self._video_event.set()
        if self._fifo:  # unblock a writer still waiting for ffmpeg to open the FIFO
            try:
                fd = os.open(self._fifo, os.O_RDONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
        writers = [t for t in self._threads if t.name != 'publish-_read_progress']
        for thread in writers:
            thread.join(timeout=1)
        process = self._process
        if process is not None and process.stdin is not None and not any(t.is_alive() for t in writers):
            try:
                process.stdin.close()
            except OSError:
                pass
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for thread in self._threads:
            thread.join(timeout=3)
        self._hop.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_reason(self) -> str:
        """Why ffmpeg ended: the hop's failure to reach the server (a certificate it does
        not accept, a refused connection) first, else ffmpeg's most telling message.
        """
        code = self._process.returncode if self._process else None
        if self._hop.last_error:
            return f'{self._hop.last_error} (ffmpeg exited with {code})'
        errors = list(self.stderr_tail)
        telling = [e for e in errors if any(k in e for k in ('401', 'Unauthorized', 'refused',
                                                              '404', 'timed out', 'reset'))]
        detail = (telling or errors or [''])[0 if telling else -1]
        return f'ffmpeg exited with {code}' + (f': {detail}' if detail else '')

    def put_frame(self, rgb: np.ndarray, stamp_ns: Optional[int] = None) -> None:
        """The newest frame for the encoder; ``stamp_ns``: its capture time (``time.time_ns``)."""
        if rgb.shape[:2] != (self.settings.height, self.settings.width):
            from PIL import Image
            rgb = np.asarray(Image.fromarray(rgb).resize((self.settings.width, self.settings.height)))
        self._video = (np.ascontiguousarray(rgb).tobytes(), stamp_ns)
        self._video_event.set()

    @property
    def input_age_ms(self) -> Optional[float]:
        """Median time from capture until ffmpeg took the frame (its last frames; None before)."""
        ages = list(self._input_ages)
        return statistics.median(ages) if ages else None

    def put_audio(self, pcm: bytes) -> None:
        self._audio.append(pcm)

    def _write_video(self) -> None:
        assert self._process is not None and self._process.stdin is not None
        while not self._stop.is_set():
            self._video_event.wait(1.0)
            self._video_event.clear()
            video, self._video = self._video, None
            if video is None:
                continue
            frame, stamp_ns = video
            try:
                self._process.stdin.write(frame)
                self._process.stdin.flush()
                self.frames_written += 1
                if stamp_ns is not None:
                    self._input_ages.append((time.time_ns() - stamp_ns) / 1e6)
            except (BrokenPipeError, OSError, ValueError):
                return

    def _write_audio(self) -> None:
        assert self._fifo is not None
        try:
            fd = os.open(self._fifo, os.O_WRONLY)  # blocks until ffmpeg opens it
        except OSError:
            return
        pending = b''
        next_time = time.monotonic()
        try:
            while not self._stop.is_set():
                self.audio_dropped += trim_backlog(self._audio)
                while len(pending) < AUDIO_CHUNK_BYTES:
                    pending += self._audio.popleft() if self._audio else bytes(AUDIO_CHUNK_BYTES)
                chunk, pending = pending[:AUDIO_CHUNK_BYTES], pending[AUDIO_CHUNK_BYTES:]
                os.write(fd, chunk)
                next_time += AUDIO_CHUNK_S
                delay = next_time - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                elif delay < -1.0:
                    next_time = time.monotonic()
        except OSError:
            pass
        finally:
            os.close(fd)

    def _read_progress(self) -> None:
        """Ffmpeg's -progress output: proves output is flowing and gives fps/bitrate."""
        assert self._process is not None and self._process.stderr is not None
        secrets = [self.settings.password, quote(self.settings.password, safe='')]
        for raw in self._process.stderr:
            line = raw.decode(errors='replace').strip()
            for secret in filter(None, secrets):
                line = line.replace(secret, '***')
            key, _, value = line.partition('=')
            if key == 'out_time_us' or key == 'frame':
                self.last_progress = time.monotonic()
            if key == 'fps':
                try:
                    self.fps = float(value)
                except ValueError:
                    pass
            elif key == 'bitrate' and value.endswith('kbits/s'):
                try:
                    self.bitrate_kbps = float(value[:-7])
                except ValueError:
                    pass
            elif '=' not in line or ' ' in line:
                self.stderr_tail.append(line)
