"""Glass-to-glass latency, CPU and bit rate of the streaming modes, in one run.

    . scripts/env.sh && python src/havatar_streaming/benchmarks/streaming_benchmark.py

The camera node draws the test pattern (640x480 at 30 Hz) with its capture time in the
pixels; receivers decode that time from every frame they get, so latency = arrival time
- capture time on the same clock. Paths measured:

- havatar server mode: camera_node -> streaming_node (ffmpeg libx264 ultrafast/zerolatency,
  1 Mbit/s, GOP 30) -> MediaMTX -> a WebRTC (WHEP, aiortc) and an RTSP (ffmpeg) receiver;
- baseline (the seed's approach): one ffmpeg fed the same pattern on a pipe, same encoder
  settings, publishing straight to the same MediaMTX; same two receivers;
- havatar server mode once more with the microphone's audio (the default configuration);
- havatar local mode: MJPEG from streaming_node over HTTP.

The baselines run after the robot's processes have stopped, as ffmpeg alone would.

Where havatar's extra time goes, p50: capture -> the image in another process (the DDS hop a
subscriber sees), capture -> ffmpeg's stdin (streaming_node's ``encoder_input_age_ms``
diagnostic; the baseline's feeder measures the same for its own writes), and the rest:
ffmpeg's stdin -> decoded at the receiver (encoder, RTSP, MediaMTX, receiver), which both
paths share. The baseline runs once more through streaming_node's RTSP auth hop (in a process
of its own) to tell the hop's share.

CPU is per mode for the producing processes (children included); bit rate is what MediaMTX
received per path (API bytesReceived) and the MJPEG bytes a viewer read.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / 'testing'))

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from havatar_drivers.stamped_pattern import decode, render  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image as RosImage  # noqa: E402
from havatar_streaming.mediamtx_api import MediaMtxApi  # noqa: E402
from havatar_testing import (MediaMtxServer, MediaMtxUser, ProcessManager, find_program,  # noqa: E402
                             free_port, ros_executable, wait_until)
from havatar_testing.cpu import CpuMeter  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment, shm_profile_environment  # noqa: E402
from havatar_testing.webrtc import whep_receive  # noqa: E402

W, H, FPS, KBPS, GOP = 640, 480, 30, 1000, 30
USER = MediaMtxUser('bench', 'bench-secret', actions=('publish', 'read'))
MJPEG_TOKEN = 'bench-token'  # the streaming node's access token


def summary(latencies_ms: list[float]) -> str:
    if not latencies_ms:
        return '   no frames decoded'
    ordered = sorted(latencies_ms)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f'{len(ordered):5d} {statistics.median(ordered):7.1f} {p95:7.1f}'


def whep_latencies(url: str, seconds: float) -> list[float]:
    async def run() -> list[float]:
        pc, tracks = await whep_receive(url, USER.user, USER.password)
        out: list[float] = []
        try:
            track = await asyncio.wait_for(tracks.get(), 10)
            while track.kind != 'video':
                track = await asyncio.wait_for(tracks.get(), 10)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                frame = await asyncio.wait_for(track.recv(), 10)
                arrived = time.time_ns()
                stamp = decode(frame.to_ndarray(format='rgb24'))
                if stamp:
                    out.append((arrived - stamp.stamp_ns) / 1e6)
        finally:
            await pc.close()
        return out
    return asyncio.run(run())


def rtsp_latencies(url: str, seconds: float) -> list[float]:
    proc = subprocess.Popen([find_program('ffmpeg'), '-v', 'error', '-rtsp_transport', 'tcp',
                             '-fflags', 'nobuffer', '-flags', 'low_delay', '-i', url,
                             '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], stdout=subprocess.PIPE)
    out: list[float] = []
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            data = proc.stdout.read(W * H * 3)
            if len(data) < W * H * 3:
                break
            arrived = time.time_ns()
            stamp = decode(np.frombuffer(data, np.uint8).reshape(H, W, 3))
            if stamp:
                out.append((arrived - stamp.stamp_ns) / 1e6)
    finally:
        proc.kill()
        proc.wait()
    return out


def mjpeg_latencies(port: int, seconds: float) -> tuple[list[float], float]:
    out: list[float] = []
    total = 0
    end = time.monotonic() + seconds
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/stream.mjpg?token={MJPEG_TOKEN}',
                                timeout=10) as r:
        buffer = b''
        while time.monotonic() < end:
            chunk = r.read1(65536)
            total += len(chunk)
            buffer += chunk
            while True:
                start = buffer.find(b'\xff\xd8')
                stop = buffer.find(b'\xff\xd9', start + 2)
                if start < 0 or stop < 0:
                    break
                arrived = time.time_ns()
                jpeg, buffer = buffer[start:stop + 2], buffer[stop + 2:]
                stamp = decode(np.array(Image.open(io.BytesIO(jpeg))))
                if stamp:
                    out.append((arrived - stamp.stamp_ns) / 1e6)
    return out, total * 8 / seconds / 1000


def pattern_feeder(ffmpeg: subprocess.Popen, stop: threading.Event, ages_ms: list[float]) -> None:
    """The baseline's camera: the same pattern, written to ffmpeg's stdin at 30 Hz;
    ``ages_ms`` gets each frame's time from capture to written.
    """
    n = 0
    next_time = time.monotonic()
    while not stop.is_set():
        captured = time.time_ns()
        try:
            ffmpeg.stdin.write(render(W, H, n, captured).tobytes())
            ffmpeg.stdin.flush()
        except (BrokenPipeError, OSError):
            return
        ages_ms.append((time.time_ns() - captured) / 1e6)
        n += 1
        next_time += 1 / FPS
        stop.wait(max(0.0, next_time - time.monotonic()))


class Baseline:
    """The seed's approach: one ffmpeg fed the pattern on a pipe, publishing to ``url``
    (MediaMTX's path ``path``, directly or through a hop), measured by the same receivers.
    """

    def __init__(self, server: MediaMtxServer, api: MediaMtxApi, path: str, url: str) -> None:
        self.server, self.api, self.path, self.url = server, api, path, url
        self.webrtc: list[float] = []
        self.rtsp: list[float] = []
        self.ages: list[float] = []  # capture -> written to ffmpeg's stdin
        self.kbps = 0.0

    def run(self, seconds: float, name: str) -> None:
        ffmpeg = subprocess.Popen(
            [find_program('ffmpeg'), '-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24',
             '-s', f'{W}x{H}', '-use_wallclock_as_timestamps', '1', '-i', 'pipe:0',
             '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline',
             '-b:v', f'{KBPS}k', '-maxrate', f'{KBPS}k', '-bufsize', f'{KBPS // 2}k', '-g', str(GOP),
             '-bf', '0', '-pix_fmt', 'yuv420p', '-fps_mode', 'passthrough',
             '-f', 'rtsp', '-rtsp_transport', 'tcp', self.url], stdin=subprocess.PIPE)
        stop = threading.Event()
        feeder = threading.Thread(target=pattern_feeder, args=(ffmpeg, stop, self.ages), daemon=True)
        feeder.start()
        try:
            wait_until(lambda: self.api.path(self.path).ready, 30, f'{self.path} path ready')
            time.sleep(2)
            self.kbps = bytes_rate(self.api, self.path, 3.0)
            self.webrtc = whep_latencies(self.server.whep_url(self.path), seconds)
            self.rtsp = rtsp_latencies(self.server.rtsp_url(self.path, USER.user, USER.password), seconds)
        finally:
            stop.set()
            feeder.join(5)
            ffmpeg.stdin.close()
            ffmpeg.terminate()
            ffmpeg.wait()
        print(f'{name + " -> WebRTC":44} {summary(self.webrtc)}')
        print(f'{name + " -> RTSP":44} {summary(self.rtsp)}')


HOP_PROGRAM = """
import os, sys
from havatar_streaming.rtsp_auth_hop import RtspAuthHop
hop = RtspAuthHop(sys.argv[1], os.environ['HOP_USER'], os.environ['HOP_PASSWORD'])
hop.start()
print(hop.url(sys.argv[2]), flush=True)
sys.stdin.read()
hop.stop()
"""


@contextlib.contextmanager
def auth_hop(server_url: str, path: str) -> Iterator[str]:
    """streaming_node's RTSP auth hop in a process of its own; yields the URL ffmpeg publishes to."""
    hop = subprocess.Popen([sys.executable, '-c', HOP_PROGRAM, server_url, path], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True,
                           env={**os.environ, 'HOP_USER': USER.user, 'HOP_PASSWORD': USER.password})
    try:
        yield hop.stdout.readline().strip()
    finally:
        hop.stdin.close()
        hop.wait(10)


def dds_hop(node: Any, seconds: float) -> list[float]:
    """Capture -> arrival of the camera's raw images in this process, for ``seconds``
    (``node`` is spun by another thread).
    """
    out: list[float] = []

    def arrived(msg: RosImage) -> None:
        now = time.time_ns()
        out.append((now - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) / 1e6)
    subscription = node.create_subscription(RosImage, 'camera/image_raw', arrived, qos_profile_sensor_data)
    time.sleep(seconds)
    node.destroy_subscription(subscription)
    return out


def start_streaming(pm: ProcessManager, server: MediaMtxServer, name: str, audio: bool) -> tuple[Any, int]:
    """streaming_node in local mode, ready for server mode on ``server``; its MJPEG port."""
    mjpeg_port = free_port()
    streaming = pm.start(name, [
        ros_executable('havatar_streaming', 'streaming_node'), '--ros-args',
        '-p', f'mjpeg_port:={mjpeg_port}', '-p', 'mjpeg_host:=127.0.0.1',
        '-p', f'server_url:=rtsp://127.0.0.1:{server.ports.rtsp}',
        '-p', f'api_url:=http://127.0.0.1:{server.ports.api}', '-p', 'stream_key:=havatar',
        '-p', f'stream_user:={USER.user}', '-p', f'width:={W}', '-p', f'height:={H}',
        '-p', f'fps:={float(FPS)}', '-p', f'video_bitrate_kbps:={KBPS}', '-p', f'gop:={GOP}',
        '-p', f'audio:={str(audio).lower()}'], env={'HAVATAR_STREAM_PASSWORD': USER.password,
                                                    'HAVATAR_ACCESS_TOKEN': MJPEG_TOKEN})
    streaming.wait_for_output('MJPEG on', timeout=30)
    return streaming, mjpeg_port


def set_mode(node: Any, mode: str) -> None:
    """Ask streaming_node for ``mode`` (``node`` is spun by another thread)."""
    from havatar_msgs.srv import SetStreamMode
    client = node.create_client(SetStreamMode, 'stream/set_mode')
    client.wait_for_service(timeout_sec=10)
    future = client.call_async(SetStreamMode.Request(mode=mode))
    wait_until(future.done, 15, f'{mode} mode')
    node.destroy_client(client)


def bytes_rate(api: MediaMtxApi, path: str, seconds: float) -> float:
    a = api.path(path).bytes_received
    time.sleep(seconds)
    return (api.path(path).bytes_received - a) * 8 / seconds / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0, help='per measurement')
    options = parser.parse_args()
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    os.environ.update(shm_profile_environment())  # as robot.launch.py runs the nodes
    work = Path(tempfile.mkdtemp(prefix='havatar-stream-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    try:
        mtx_dir = work / 'mediamtx'
        mtx_dir.mkdir()
        server = MediaMtxServer(pm, mtx_dir, [USER]).start()
        api = MediaMtxApi(server.api_url(''))
        camera = pm.start('camera_node', [ros_executable('havatar_drivers', 'camera_node'), '--ros-args',
                                          '-p', 'source:=test_pattern', '-p', f'width:={W}',
                                          '-p', f'height:={H}', '-p', f'fps:={float(FPS)}'])
        streaming, mjpeg_port = start_streaming(pm, server, 'streaming_node', audio=False)
        camera.wait_for_output('publishing', timeout=30)
        time.sleep(2)

        print(f'Streaming benchmark: {W}x{H}@{FPS} test pattern, {options.seconds:g} s per measurement')
        print(f'{"path":44} {"n":>5} {"p50 ms":>7} {"p95 ms":>7}')
        cpu = CpuMeter([camera.pid, streaming.pid])
        mjpeg, mjpeg_kbps = mjpeg_latencies(mjpeg_port, options.seconds)
        local_cpu = cpu.percent()
        print(f'{"local: MJPEG over HTTP":44} {summary(mjpeg)}')

        import rclpy
        rclpy.init(domain_id=lease.domain_id)
        node = rclpy.create_node('streaming_benchmark')
        spinner = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
        spinner.start()
        input_ages: list[float] = []  # streaming_node's encoder_input_age_ms reports
        node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: input_ages.extend(
            float(kv.value) for st in m.status for kv in st.values if kv.key == 'encoder_input_age_ms'), 10)

        def server_mode(name: str) -> tuple[list[float], list[float], list[float], float, float]:
            """streaming_node in server mode: WebRTC and RTSP latencies, its encoder input ages,
            the bit rate into MediaMTX and the CPU of the camera and streaming nodes meanwhile.
            """
            set_mode(node, 'server')
            wait_until(lambda: api.path('havatar').ready, 30, 'havatar path ready')
            time.sleep(2)
            input_ages.clear()
            cpu = CpuMeter([camera.pid, streaming.pid])
            kbps = bytes_rate(api, 'havatar', 3.0)
            webrtc = whep_latencies(server.whep_url('havatar'), options.seconds)
            rtsp = rtsp_latencies(server.rtsp_url('havatar', USER.user, USER.password), options.seconds)
            percent = cpu.percent()
            print(f'{name + " -> WebRTC":44} {summary(webrtc)}')
            print(f'{name + " -> RTSP":44} {summary(rtsp)}')
            return webrtc, rtsp, list(input_ages), kbps, percent

        ours_webrtc, ours_rtsp, ours_ages, server_kbps, server_cpu = server_mode('havatar server mode -> MediaMTX')
        hop = dds_hop(node, options.seconds / 2)  # after the receivers: a third reader of the images
        set_mode(node, 'local')

        # the default configuration: the microphone's audio too, a second input of ffmpeg's
        streaming.stop()
        microphone = pm.start('microphone_node', [ros_executable('havatar_drivers', 'microphone_node'),
                                                  '--ros-args', '-p', 'source:=tone'])
        microphone.wait_for_output('capturing', timeout=30)
        streaming, _ = start_streaming(pm, server, 'streaming_node_audio', audio=True)
        audio_webrtc, audio_rtsp, audio_ages, _, _ = server_mode('  the same with audio')
        set_mode(node, 'local')
        for process in (streaming, microphone, camera):  # the baselines run alone, as ffmpeg would
            process.stop()
        rclpy.shutdown()
        spinner.join(5)

        base = Baseline(server, api, 'baseline', server.rtsp_url('baseline', USER.user, USER.password))
        base.run(options.seconds, 'baseline ffmpeg -> MediaMTX')
        with auth_hop(f'rtsp://127.0.0.1:{server.ports.rtsp}', 'baseline-hop') as hop_url:
            hopped = Baseline(server, api, 'baseline-hop', hop_url)
            hopped.run(options.seconds, 'baseline through the auth hop')
        base_webrtc, base_rtsp, base_ages = base.webrtc, base.rtsp, base.ages

        def p50(values: list[float]) -> float:
            return statistics.median(values) if values else float('nan')
        print('\nratio havatar / baseline (p50): WebRTC '
              f'{p50(ours_webrtc) / p50(base_webrtc):.2f}, RTSP {p50(ours_rtsp) / p50(base_rtsp):.2f}')
        ours_in, base_in, audio_in = p50(ours_ages), p50(base_ages), p50(audio_ages)
        print('\nwhere the time goes (p50, ms)                  havatar  baseline')
        print(f'  capture -> image in another process (DDS)  {p50(hop):8.1f}         -')
        print(f"  capture -> ffmpeg's stdin                  {ours_in:8.1f}  {base_in:8.1f}")
        print(f"  ffmpeg's stdin -> decoded, WebRTC          {p50(ours_webrtc) - ours_in:8.1f}  "
              f'{p50(base_webrtc) - base_in:8.1f}')
        print(f"  ffmpeg's stdin -> decoded, RTSP            {p50(ours_rtsp) - ours_in:8.1f}  "
              f'{p50(base_rtsp) - base_in:8.1f}')
        print(f'  with audio: capture -> stdin {audio_in:.1f}, stdin -> decoded WebRTC '
              f'{p50(audio_webrtc) - audio_in:.1f}, RTSP {p50(audio_rtsp) - audio_in:.1f}')
        print(f'  of which the auth hop (baseline with it - without): WebRTC '
              f'{p50(hopped.webrtc) - p50(base_webrtc):+.1f}, RTSP {p50(hopped.rtsp) - p50(base_rtsp):+.1f}')
        print('\nCPU (% of one core: camera_node + streaming_node + their ffmpeg)')
        print(f'  local mode, one MJPEG viewer        {local_cpu:6.1f} %')
        print(f'  server mode, WHEP + RTSP readers    {server_cpu:6.1f} %')
        print('bit rate (kbit/s)')
        print(f'  local MJPEG (one viewer)            {mjpeg_kbps:8.0f}')
        print(f'  server mode H.264 into MediaMTX     {server_kbps:8.0f}')
        print(f'  baseline H.264 into MediaMTX        {base.kbps:8.0f}')
    finally:
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
