"""Memory and CPU of the whole demo, idle and while driving with video.

    . scripts/env.sh && python src/havatar_bringup/benchmarks/demo_resources.py

Starts ``demo --headless``, then measures the demo's whole process tree (psutil: summed
RSS, CPU % of one core) for ``--seconds`` idle, then again while a client drives at 20 Hz
through the robot's local UI protocol, one browser-like client watches MJPEG and one
watches WebRTC (WHEP through MediaMTX).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from havatar_testing import ProcessManager, ros_executable  # noqa: E402
from havatar_testing.cpu import cpu_percent, tree  # noqa: E402
from havatar_testing.isolation import DomainLease  # noqa: E402
from havatar_testing.relay import Client  # noqa: E402
from havatar_testing.webrtc import whep_receive  # noqa: E402


def measure(pid: int, seconds: float) -> tuple[float, float]:
    """(CPU % of one core, RSS MiB) of the tree over ``seconds``."""
    cpu = cpu_percent([pid], seconds)
    rss = sum(p.memory_info().rss for p in tree(pid) if p.is_running()) / 2**20
    return cpu, rss


def node_argument(pid: int, node: str, name: str) -> str:
    """A ``-p name:=value`` the demo gave one of its nodes."""
    for process in tree(pid):
        line = ' '.join(process.cmdline())
        if node in line:
            match = re.search(rf'{name}:=(\S+)', line)
            if match:
                return match.group(1)
    raise LookupError(f'{node} has no {name}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0)
    options = parser.parse_args()
    lease = DomainLease()
    work = Path(tempfile.mkdtemp(prefix='havatar-demo-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    try:
        demo = pm.start('demo', [ros_executable('havatar_bringup', 'demo'), '--headless',
                                 '--run-dir', work / 'run', '--domain-id', str(lease.domain_id)])
        demo.wait_for_output('Press Ctrl-C', timeout=120)
        local_ui = re.search(r'robot web UI \(local mode\):\s+(\S+)', demo.output()).group(1)
        server_ui = re.search(r'relay web UI \(server mode\):\s+(\S+)', demo.output()).group(1)
        time.sleep(3)
        idle = measure(demo.pid, options.seconds)
        base, token = local_ui.split('/#')[0], re.search(r'token=([^&]+)', local_ui).group(1)
        user_token = re.search(r'token=([^&]+)', server_ui).group(1)
        mjpeg_port = node_argument(demo.pid, 'streaming_node', 'mjpeg_port')
        whep_base = node_argument(demo.pid, 'relay_node', 'whep_base_url')
        stop = threading.Event()

        def watch_mjpeg() -> None:
            url = f'http://127.0.0.1:{mjpeg_port}/stream.mjpg?token={token}'
            with urllib.request.urlopen(url, timeout=10) as r:
                while not stop.is_set():
                    r.read1(65536)

        async def drive_and_watch() -> None:
            user = await Client.connect(base, 'user', token, 'demo-robot')
            pc, _ = await whep_receive(f'{whep_base}/demo-robot/whep', token=user_token)
            end = time.monotonic() + options.seconds + 1
            seq = 0
            while time.monotonic() < end:
                await user.send({'type': 'drive', 'seq': seq, 'ts': time.time() * 1000,
                                 'linear': 0.2, 'angular': 0.3})
                seq += 1
                await asyncio.sleep(0.05)
            await user.close()
            await pc.close()
        viewer = threading.Thread(target=watch_mjpeg, daemon=True)
        viewer.start()
        measured: list[tuple[float, float]] = []
        meter = threading.Thread(target=lambda: (time.sleep(1), measured.append(measure(demo.pid, options.seconds))))
        meter.start()
        asyncio.run(drive_and_watch())
        meter.join()
        stop.set()
        print(f'demo process tree ({len(tree(demo.pid))} processes), {options.seconds:g} s each')
        print(f'  idle:                              CPU {idle[0]:6.1f} % of one core, RSS {idle[1]:7.1f} MiB')
        cpu, rss = measured[0]
        print(f'  driving 20 Hz + MJPEG + WebRTC:    CPU {cpu:6.1f} % of one core, RSS {rss:7.1f} MiB')
    finally:
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
