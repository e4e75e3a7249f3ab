"""Encoding on demand: what an idle robot in server mode costs, and how fast video comes.

    . scripts/env.sh && python src/havatar_streaming/benchmarks/on_demand_benchmark.py

The deployed shape on one machine (``havatar_testing.ondemand``): MediaMTX authenticating
through the relay server, which asks MediaMTX's API who reads; the robot's camera (test
pattern, 640x480 at 30 Hz), microphone, relay node and streaming node in server mode.

- CPU (% of one core) of streaming_node with its ffmpeg children (ended ones included), and
  of camera_node, with
  nobody reading (no encoder; goal < 3 %), beside the same with one WebRTC reader (the
  baseline: what server mode cost before, whether anyone watched or not).
- Time from a WHEP offer to the first decoded video frame, p50/p95 over ``--tries``: cold
  (the encoder idle: the reader wakes it; goal p95 < 1.0 s) beside warm (another reader
  keeps the encoder running: the time WebRTC itself takes). For the cold tries, the time
  from the offer until MediaMTX reports the robot's path ready (polled every 50 ms) splits
  it into waking the robot (relay hook, relay node, streaming node, ffmpeg publishing) and
  the WebRTC part after it.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / 'testing'))

from havatar_testing import ProcessManager, wait_until  # noqa: E402
from havatar_testing.cpu import cpu_percent  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment, shm_profile_environment  # noqa: E402
from havatar_testing.ondemand import USER, OnDemandStack, start_on_demand_stack  # noqa: E402
from havatar_testing.webrtc import whep_receive  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402

W, H, FPS = 640, 480, 30.0
LINGER = 1.0  # s (robot.yaml: 10 s); short, so that the cold tries do not wait long


def percentiles(values: list[float]) -> str:
    if not values:
        return 'no frames'
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f'p50 {statistics.median(ordered):5.2f} s   p95 {p95:5.2f} s   max {ordered[-1]:5.2f} s   (n={len(ordered)})'


async def first_frame(url: str) -> tuple[float, object]:
    start = time.monotonic()
    pc, tracks = await whep_receive(url, token=USER)
    try:
        track = await asyncio.wait_for(tracks.get(), 15)
        while track.kind != 'video':
            track = await asyncio.wait_for(tracks.get(), 15)
        await asyncio.wait_for(track.recv(), 15)
    except BaseException:
        await pc.close()
        raise
    return time.monotonic() - start, pc


async def one_try(url: str, failures: list[str]) -> float | None:
    """Seconds to the first frame of one new reader (None, and the failure noted, if none came)."""
    try:
        seconds, pc = await first_frame(url)
    except (MediaStreamError, asyncio.TimeoutError, PermissionError) as exc:
        failures.append(f'{type(exc).__name__}: {exc}')
        return None
    await pc.close()
    return seconds


def idle(stack: OnDemandStack) -> None:
    wait_until(lambda: not stack.encoders() and not stack.path().get('ready'), 30, 'the encoder idle')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0, help='per CPU measurement')
    parser.add_argument('--tries', type=int, default=20, help='WHEP offers per latency figure')
    options = parser.parse_args()
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    os.environ.update(shm_profile_environment())  # as robot.launch.py runs the nodes
    work = Path(tempfile.mkdtemp(prefix='havatar-on-demand-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    try:
        stack = start_on_demand_stack(pm, work, idle_linger=LINGER, width=W, height=H, fps=FPS)
        print(f'On-demand benchmark: {W}x{H}@{FPS:g} test pattern, idle_linger {LINGER:g} s, '
              f'{options.seconds:g} s per CPU figure, {options.tries} tries per latency figure')
        idle(stack)
        time.sleep(1.0)
        idle_streaming = cpu_percent([stack.streaming.pid], options.seconds, ended_children=True)
        idle_camera = cpu_percent([stack.camera.pid], options.seconds, ended_children=True)

        async def watched() -> tuple[float, float]:
            _, pc = await first_frame(stack.whep_url())
            try:
                await asyncio.sleep(2.0)  # past the start
                loop = asyncio.get_running_loop()
                streaming = await loop.run_in_executor(None, cpu_percent, [stack.streaming.pid], options.seconds, True)
                camera = await loop.run_in_executor(None, cpu_percent, [stack.camera.pid], options.seconds, True)
                return streaming, camera
            finally:
                await pc.close()
        read_streaming, read_camera = asyncio.run(watched())

        print('\nCPU (% of one core)                       nobody reads   one WebRTC reader')
        print(f'  streaming_node + its ffmpeg              {idle_streaming:8.1f} %    {read_streaming:8.1f} %')
        print(f'  camera_node                              {idle_camera:8.1f} %    {read_camera:8.1f} %')

        cold_failures: list[str] = []
        cold: list[float] = []
        ready: list[float] = []
        for _ in range(options.tries):
            idle(stack)
            offered = time.monotonic()
            stop = threading.Event()

            def poll() -> None:
                while not stop.is_set():
                    if stack.path().get('ready'):
                        ready.append(time.monotonic() - offered)
                        return
                    stop.wait(0.05)
            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            seconds = asyncio.run(one_try(stack.whep_url(), cold_failures))
            stop.set()
            poller.join()
            if seconds is not None:
                cold.append(seconds)

        warm_failures: list[str] = []

        async def warm_tries() -> list[float]:
            _, keeper = await first_frame(stack.whep_url())  # keeps the encoder running
            out = []
            try:
                for _ in range(options.tries):
                    seconds = await one_try(stack.whep_url(), warm_failures)
                    if seconds is not None:
                        out.append(seconds)
                    await asyncio.sleep(0.3)
            finally:
                await keeper.close()
            return out
        warm = asyncio.run(warm_tries())
        print('\nWHEP offer -> first decoded video frame')
        print(f'  cold (encoder idle, woken by the reader) {percentiles(cold)}, {len(cold_failures)} failed')
        print(f'    of which offer -> robot path ready     {percentiles(ready)}')
        print(f'  warm (encoder already running)           {percentiles(warm)}, {len(warm_failures)} failed')
        for failure in cold_failures + warm_failures:
            print(f'  failed try: {failure}')
    finally:
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
