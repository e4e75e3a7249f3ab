"""The robot side in one process (one_process:=true) against a process per node, side by side.

    . scripts/env.sh && python src/havatar_bringup/benchmarks/container_benchmark.py

1. ``resources``: runs ``demo --headless`` (server mode, test pattern 640x480@30) once per
   way: ``separate`` (a process per node), then ``one_process`` with each executor asked for
   (``--executors``, default ``single,multi``). For each, RSS and CPU (% of one core)
   of the robot side only -- motor_guard and the ROS nodes with their children (ffmpeg), not
   the ESP32 simulator, MediaMTX, Redis or the relay server -- idle for ``--seconds``, then
   with one MJPEG viewer, one WebRTC viewer (WHEP through MediaMTX) and a driver at 20 Hz.
   Goal: under 300 MiB RSS and under 25 % of one core idle.
2. ``hop``: the image hop, camera_node (640x480 rgb8 at 30 Hz) to a subscriber
   (``image_hop.py``): in another process, and in the same robot_container (rclpy has no
   zero-copy: the message is still serialized and copied inside the process).

Figures on the shared 2-core development machine (26 Nov 2026, 30 s windows): RSS 225 MiB in
one process against 695 MiB separate (the goal, < 300 MiB, met only in one process); CPU
51.8 % against 56.1 % idle and 53.3 % against 57.4 % watched (10 and 20 s windows scattered
both ways by up to 25 points: within this machine's noise); the image hop p50 20.4 ms
against 15.8 ms (one GIL for the camera, the MJPEG encoder and the executor). The
MultiThreadedExecutor took 60-92 % in every run, more than the single-threaded one, so
one_process uses ``single``. Those figures predate encoding on demand, when neither way
reached < 25 % idle (ffmpeg 13 %, streaming_node 20 %, camera 13 % with nobody watching); on
demand, the idle robot side took 20.7 % in one process against 17.0 %, at 180 against 871 MiB,
so the demo now runs one process (the launch files keep a process per node by default).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Optional

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from havatar_testing import ProcessManager, ros_executable  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment, shm_profile_environment  # noqa: E402
from havatar_testing.relay import Client  # noqa: E402
from havatar_testing.webrtc import whep_receive  # noqa: E402

NOT_ROBOT = ('redis-server', 'relay_server', 'mediamtx', 'esp32_sim')  # the server side, the hardware


def robot_side(demo_pid: int) -> list[psutil.Process]:
    """The demo's robot processes (each in its own session under the demo) and their children."""
    found = []
    for child in psutil.Process(demo_pid).children():
        try:
            line = ' '.join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if not any(name in line for name in NOT_ROBOT):
            found += [child, *child.children(recursive=True)]
    return found


def process_name(line: list[str]) -> str:
    """robot_container, a node's name, or the program's."""
    if any('robot_container' in a for a in line[:2]):
        return 'robot_container'
    return next((a.split(':=')[1] for a in line if a.startswith('__node:=')),
                Path(line[1] if 'python' in Path(line[0]).name else line[0]).name)


def measure(demo_pid: int, seconds: float) -> tuple[float, float, dict[str, tuple[float, float]]]:
    """(CPU % of one core, RSS MiB, per process: (CPU %, RSS MiB)) of the robot side over ``seconds``."""
    processes = robot_side(demo_pid)

    def cpu(p: psutil.Process) -> float:
        try:
            times = p.cpu_times()
            return times.user + times.system
        except psutil.NoSuchProcess:
            return 0.0
    start, t0 = [cpu(p) for p in processes], time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    per: dict[str, tuple[float, float]] = {}
    for p, before in zip(processes, start):
        try:
            name = process_name(p.cmdline())
            used, rss = (cpu(p) - before) / elapsed * 100, p.memory_info().rss / 2**20
        except (psutil.NoSuchProcess, IndexError):
            continue
        old = per.get(name, (0.0, 0.0))
        per[name] = (old[0] + used, old[1] + rss)
    return sum(c for c, _ in per.values()), sum(r for _, r in per.values()), per


def node_argument(demo_pid: int, node: str, name: str) -> str:
    """A ``-p name:=value`` the demo gave one of its nodes (in its own or the container's command line)."""
    for process in robot_side(demo_pid):
        line = ' '.join(process.cmdline())
        match = re.search(rf'__node:={node} .*?{name}:=(\S+)', line)
        if match:
            return match.group(1)
    raise LookupError(f'{node} has no {name}')


def run_demo(pm: ProcessManager, work: Path, domain: int, way: str, seconds: float) -> dict[str, object]:
    """Idle and watched figures of the robot side, the demo run ``way``."""
    one_process = way != 'separate'
    argv = [ros_executable('havatar_bringup', 'demo'), '--headless', '--run-dir', work / way,
            '--domain-id', str(domain), '--one-process' if one_process else '--no-one-process']
    if one_process:
        argv += ['--container-executor', way.split(':')[1]]
    demo = pm.start(f'demo-{way}', argv)
    try:
        demo.wait_for_output('Press Ctrl-C', timeout=180)
        local_ui = re.search(r'robot web UI \(local mode\):\s+(\S+)', demo.output()).group(1)
        server_ui = re.search(r'relay web UI \(server mode\):\s+(\S+)', demo.output()).group(1)
        time.sleep(5)  # the stream up, start-up over
        idle = measure(demo.pid, seconds)
        base, token = local_ui.split('/#')[0], re.search(r'token=([^&]+)', local_ui).group(1)
        user_token = re.search(r'token=([^&]+)', server_ui).group(1)
        mjpeg_port = node_argument(demo.pid, 'streaming_node', 'mjpeg_port')
        whep_base = node_argument(demo.pid, 'relay_node', 'whep_base_url')
        stop = threading.Event()
        frames = [0]

        def watch_mjpeg() -> None:
            url = f'http://127.0.0.1:{mjpeg_port}/stream.mjpg?token={token}'
            with urllib.request.urlopen(url, timeout=10) as r:
                while not stop.is_set():
                    frames[0] += r.read1(65536).count(b'\xff\xd8')

        measured: list[tuple[float, float, dict[str, float]]] = []

        async def drive_and_watch() -> None:
            user = await Client.connect(base, 'user', token, 'demo-robot')
            pc, _ = await whep_receive(f'{whep_base}/demo-robot/whep', token=user_token)
            meter = threading.Thread(target=lambda: (time.sleep(2), measured.append(measure(demo.pid, seconds))))
            meter.start()
            seq = 0
            while meter.is_alive():
                await user.send({'type': 'drive', 'seq': seq, 'ts': time.time() * 1000,
                                 'linear': 0.2, 'angular': 0.3})
                seq += 1
                await asyncio.sleep(0.05)
            await user.close()
            await pc.close()
        viewer = threading.Thread(target=watch_mjpeg, daemon=True)
        viewer.start()
        started, t0 = frames[0], time.monotonic()
        asyncio.run(drive_and_watch())
        fps = (frames[0] - started) / (time.monotonic() - t0)
        stop.set()
        return {'idle': idle, 'watched': measured[0], 'mjpeg_fps': fps}
    finally:
        demo.stop()


def hop(pm: ProcessManager, work: Path, same_process: bool, executor: str, seconds: float) -> dict[str, float]:
    """camera_node -> image_hop latency, in one robot_container or across two processes."""
    env = {'PYTHONPATH': os.pathsep.join([str(Path(__file__).parent), os.environ.get('PYTHONPATH', '')])}
    camera = ['camera_node', '--ros-args', '-r', '__node:=camera_node', '-p', 'source:=test_pattern', '--']
    probe = ['image_hop:ImageHop', '--ros-args', '-p', f'seconds:={seconds}', '--']
    container = [ros_executable('havatar_bringup', 'robot_container'), '--executor', executor]
    name = f'hop-{"same" if same_process else "two"}-{executor}'
    started = [pm.start(name, container + camera + probe, env=env)] if same_process else [
        pm.start(f'{name}-camera', [ros_executable('havatar_drivers', 'camera_node'), '--ros-args',
                                    '-p', 'source:=test_pattern']),
        pm.start(name, container + probe, env=env)]
    try:
        line = started[-1].wait_for_output(r'^hop: (.*)$', timeout=seconds + 60)
        return json.loads(line.group(1))  # type: ignore[no-any-return]
    finally:
        for process in reversed(started):
            process.stop()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--executors', default='single,multi')
    parser.add_argument('--sections', default='resources,hop')
    options = parser.parse_args(argv)
    sections = set(options.sections.split(','))
    executors = options.executors.split(',')
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    os.environ.update(shm_profile_environment())  # as the launchers run the nodes
    work = Path(tempfile.mkdtemp(prefix='havatar-container-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    try:
        if 'hop' in sections:
            print('image hop camera_node -> subscriber, 640x480 rgb8 at 30 Hz (ms after capture)', flush=True)
            print(f'  {"way":28} {"n":>5} {"fps":>5} {"p50":>7} {"p95":>7}', flush=True)
            ways = [(False, 'single')] + [(True, e) for e in executors]
            for same, executor in ways:
                figures = hop(pm, work, same, executor, options.seconds)
                label = f'one process ({executor})' if same else 'two processes'
                print(f'  {label:28} {figures["n"]:5d} {figures["fps"]:5.1f} {figures["p50_ms"]:7.2f} '
                      f'{figures["p95_ms"]:7.2f}', flush=True)
        if 'resources' in sections:
            ways = ['separate'] + [f'one_process:{e}' for e in executors]
            results = {}
            for way in ways:
                results[way] = run_demo(pm, work, lease.domain_id, way, options.seconds)
                print(f'  ({way}: measured)', flush=True)
            print(f'\nrobot side of the demo (motor_guard + nodes + ffmpeg), {options.seconds:g} s each; '
                  'watched = 1 MJPEG + 1 WebRTC viewer + driving at 20 Hz')
            print(f'  {"":24}' + ''.join(f'{way:>22}' for way in ways))
            for state in ('idle', 'watched'):
                print(f'  {state + " CPU % of one core":24}' + ''.join(
                    f'{results[w][state][0]:22.1f}' for w in ways))  # type: ignore[index]
                print(f'  {state + " RSS MiB":24}' + ''.join(
                    f'{results[w][state][1]:22.1f}' for w in ways))  # type: ignore[index]
            print(f'  {"MJPEG frames/s seen":24}' + ''.join(f'{results[w]["mjpeg_fps"]:22.1f}' for w in ways))
            for way in ways:
                for state in ('idle', 'watched'):
                    per = results[way][state][2]  # type: ignore[index]
                    print(f'  {state} per process (CPU %, RSS MiB), {way}: '
                          + ', '.join(f'{n} {c:.1f} % {r:.0f}' for n, (c, r) in per.items()))
    finally:
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
