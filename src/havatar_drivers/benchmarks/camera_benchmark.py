"""Benchmark of an MJPEG camera both ways: decode and re-encode, or keep the camera's JPEG.

    . scripts/env.sh && python src/havatar_drivers/benchmarks/camera_benchmark.py

An ffmpeg-made MJPEG stream stands in for the camera (``MjpegCameraStandIn``: the stamped
pattern at 640x480@30, each frame carrying the time it was drawn, encoded by ffmpeg and
written into a FIFO). For each way, camera_node reads it (``source:=mjpeg_stream``,
``keep_jpeg`` false or true) and streaming_node serves MJPEG to one viewer here; printed:
capture-to-MJPEG latency at the viewer (p50/p95), the frames it got, and the CPU of each
node (children included) over the same window. Then the held-back frame: how many JPEGs a
decoder must be fed before the first one comes out (0 = none held back), for an ffmpeg
pipe decoder with ``-threads 1`` and with its default threads, and for Pillow in-process
(what camera_node uses for raw subscribers). The third way remaps streaming_node's raw
subscription away, as a streaming node that subscribes raw only while it encodes video
would be: today it always subscribes, so camera_node decodes every frame for it.
"""
from __future__ import annotations

import argparse
import io
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from havatar_drivers.camera.jpeg_stream import JpegSplitter  # noqa: E402
from havatar_drivers.camera.standin import MjpegCameraStandIn  # noqa: E402
from havatar_drivers.camera_node import decode_jpeg  # noqa: E402
from havatar_drivers.stamped_pattern import decode, render  # noqa: E402
from havatar_testing import ProcessManager, find_program, free_port, ros_executable  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment, shm_profile_environment  # noqa: E402
from havatar_testing.cpu import cpu_seconds  # noqa: E402

W, H, FPS = 640, 480, 30.0
TOKEN = 'bench-token'


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float('nan')


def mjpeg_viewer(port: int, seconds: float, out: list[float]) -> None:
    """Read the MJPEG stream for ``seconds``; append capture-to-arrival latencies (ms)."""
    splitter = JpegSplitter()
    end = time.monotonic() + seconds
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/stream.mjpg?token={TOKEN}', timeout=10) as r:
        while time.monotonic() < end:
            chunk = r.read1(65536)
            if not chunk:
                return
            arrived = time.time_ns()
            for jpeg in splitter.feed(chunk):
                stamp = decode(np.array(Image.open(io.BytesIO(jpeg))))
                if stamp:
                    out.append((arrived - stamp.stamp_ns) / 1e6)


def one_way(pm: ProcessManager, work: Path, keep_jpeg: bool, seconds: float, raw_wanted: bool = True) -> None:
    name = ('keep' if keep_jpeg else 'reencode') + ('' if raw_wanted else '-noraw')
    standin = MjpegCameraStandIn(work / f'{name}.fifo', W, H, FPS, ffmpeg=find_program('ffmpeg')).start()
    try:
        camera = pm.start(f'camera-{name}', [
            ros_executable('havatar_drivers', 'camera_node'), '--ros-args', '-p', 'source:=mjpeg_stream',
            '-p', f'device:={standin.fifo}', '-p', f'width:={W}', '-p', f'height:={H}',
            '-p', f'fps:={FPS}', '-p', f'keep_jpeg:={str(keep_jpeg).lower()}'])
        port = free_port()
        streaming = pm.start(f'streaming-{name}', [
            ros_executable('havatar_streaming', 'streaming_node'), '--ros-args',
            '-p', f'mjpeg_port:={port}', '-p', 'mjpeg_host:=127.0.0.1', '-p', f'width:={W}',
            '-p', f'height:={H}', '-p', f'fps:={FPS}', '-p', 'audio:=false',
            *([] if raw_wanted else ['-r', 'camera/image_raw:=camera/image_raw_unused'])],
            env={'HAVATAR_ACCESS_TOKEN': TOKEN})
        camera.wait_for_output('publishing', timeout=30)
        streaming.wait_for_output('MJPEG on', timeout=30)
        warm: list[float] = []
        mjpeg_viewer(port, 3.0, warm)  # the viewer's subscription settles
        latencies: list[float] = []
        viewer = threading.Thread(target=mjpeg_viewer, args=(port, seconds, latencies))
        before = {n: cpu_seconds([p.pid]) for n, p in (('camera', camera), ('streaming', streaming))}
        started = time.monotonic()
        viewer.start()
        viewer.join()
        elapsed = time.monotonic() - started
        cpu = {n: 100 * (cpu_seconds([p.pid]) - before[n]) / elapsed
               for n, p in (('camera', camera), ('streaming', streaming))}
        label = ('camera JPEG kept' if keep_jpeg else 'decode + re-encode') + ('' if raw_wanted else ', no raw sub')
        print(f'{label:32} {len(latencies) / elapsed:6.1f} {percentile(latencies, 50):7.1f} '
              f'{percentile(latencies, 95):7.1f} {cpu["camera"]:9.1f} {cpu["streaming"]:10.1f}')
        camera.stop()
        streaming.stop()
    finally:
        standin.stop()


def jpegs(count: int) -> list[bytes]:
    out = []
    for n in range(count):
        buffer = io.BytesIO()
        Image.fromarray(render(W, H, n, time.time_ns())).save(buffer, format='JPEG', quality=80)
        out.append(buffer.getvalue())
    return out


def ffmpeg_held_back(frames: list[bytes], threads: Optional[int]) -> int:
    """JPEGs written to an ffmpeg pipe decoder before its first frame came out, minus one."""
    argv = [find_program('ffmpeg'), '-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'mjpeg',
            *(['-threads', str(threads)] if threads is not None else []), '-i', '-',
            '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None
    try:
        for fed, frame in enumerate(frames, start=1):
            process.stdin.write(frame)
            process.stdin.flush()
            if select.select([process.stdout], [], [], 0.5)[0]:  # 15 frame times: it came out, or is held
                return fed - 1
        return len(frames)
    finally:
        process.kill()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0, help='measuring window per way')
    options = parser.parse_args()
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    os.environ.update(shm_profile_environment())  # as robot.launch.py runs the nodes
    work = Path(tempfile.mkdtemp(prefix='havatar-camera-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    try:
        print(f'MJPEG camera stand-in {W}x{H}@{FPS:g} -> camera_node -> streaming_node MJPEG -> one viewer, '
              f'{options.seconds:g} s each')
        print(f'{"way":32} {"fps":>6} {"p50 ms":>7} {"p95 ms":>7} {"camera %":>9} {"streaming %":>10}')
        for keep_jpeg, raw_wanted in ((False, True), (True, True), (True, False)):
            one_way(pm, work, keep_jpeg, options.seconds, raw_wanted)
            pm.stop_all()
        print('\nheld-back frames of a JPEG decoder (0 = each frame out before the next goes in)')
        frames = jpegs(10)
        print(f'  ffmpeg pipe, -f mjpeg, -threads 1   {ffmpeg_held_back(frames, 1)}')
        print(f'  ffmpeg pipe, -f mjpeg, threads auto {ffmpeg_held_back(frames, None)}')
        started = time.perf_counter()
        for frame in frames:
            decode_jpeg(frame)  # returns each frame before the next is given: 0 by construction
        print(f'  Pillow in camera_node               0  ({(time.perf_counter() - started) / len(frames) * 1e3:.1f} '
              f'ms per {W}x{H} decode)')
    finally:
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
