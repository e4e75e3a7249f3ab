"""How long "Test connection" makes the user wait, per outcome, in one run.

    . scripts/env.sh && python src/havatar_streaming/benchmarks/probe_benchmark.py [--rounds 5]

Against a real MediaMTX on loopback (Havatar's settings, the test users): the probe
(``server_probe.probe``) with the right credentials, a wrong password, a closed port, a
name that does not resolve and a server that accepts but never answers (the RTSP time
limit). Baseline: the seed's test, an HTTP GET of MediaMTX's ``/v3/config/global`` (which
finds only whether the API answers, not the RTSP port or the credentials; MediaMTX 1.14
calls it /v3/config/global/get).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / 'testing'))

from havatar_bringup.processes import ProcessManager, free_port  # noqa: E402
from havatar_streaming.server_probe import ProbeSettings, probe  # noqa: E402
from havatar_testing.mediamtx import MediaMtxServer  # noqa: E402
from havatar_testing.streaming import ROBOT, USERS  # noqa: E402


def timed(settings: ProbeSettings, rounds: int, **limits: float) -> tuple[list[float], str]:
    times, error = [], ''
    for _ in range(rounds):
        start = time.perf_counter()
        result = asyncio.run(probe(settings, **limits))
        times.append(time.perf_counter() - start)
        error = result.error or 'ok'
    return times, error


def line(name: str, times: list[float], outcome: str) -> str:
    return (f'{name:<34} {outcome:<13} p50 {statistics.median(times) * 1000:8.1f} ms'
            f'   max {max(times) * 1000:8.1f} ms')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as work:
        processes = ProcessManager(Path(work), dict(os.environ))
        try:
            server = MediaMtxServer(processes, Path(work), USERS).start()
            url = f'rtsp://127.0.0.1:{server.ports.rtsp}'

            def robot(server_url: str, password: str = ROBOT.password) -> ProbeSettings:
                return ProbeSettings(server_url, ROBOT.path, password, ROBOT.user, api_url='none')
            baseline = []
            for _ in range(rounds):
                start = time.perf_counter()
                with urllib.request.urlopen(server.api_url('/v3/config/global/get'), timeout=5) as r:
                    r.read()
                baseline.append(time.perf_counter() - start)
            print(f'probe timings, {rounds} rounds each (MediaMTX on loopback)')
            print(line('baseline: seed API GET (global/get)', baseline, 'ok'))
            print(line('right credentials', *timed(robot(url), rounds)))
            print(line('wrong password', *timed(robot(url, 'wrong'), rounds)))
            print(line('closed port', *timed(robot(f'rtsp://127.0.0.1:{free_port()}'), rounds)))
            print(line('unresolvable name', *timed(robot('rtsps://no-such-host.invalid:8322'), rounds)))
            with socket.create_server(('127.0.0.1', 0)) as silent:
                silent_url = f'rtsp://127.0.0.1:{silent.getsockname()[1]}'
                print(line('silent server (6 s RTSP limit)', *timed(robot(silent_url), 1)))
        finally:
            processes.stop_all()
    return 0


if __name__ == '__main__':
    sys.exit(main())
