"""Relay load generator: saturation throughput of one relay_server instance, then of two behind Redis.

    . scripts/env.sh && python src/havatar_relay/benchmarks/relay_load.py [--baseline REV] [--pairs 100]

Several worker processes open ``--pairs`` user/robot connection pairs with the real protocol
(hello, take_control, then drives; every robot acks every drive; users offer
permessage-deflate as browsers do, robots do not, as the robot's cloud client). Each user sends its drives
open-loop at its share of the offered rate, pipelined: the drives due in a tick go out
back to back without waiting for acks. The offered rate climbs in steps; a step passes when
the forwarding latency (user send -> robot receive) has p99 < ``--p99-ms`` and at least 97 %
of the drives were delivered and acked. The saturation throughput is the last passing step;
the climb goes on past it while every drive still gets through (the ceiling, any latency).
Then the same with two instances sharing a Redis (redis-server started here), users and
robots spread over both so that half the drives cross instances.

The relay runs with its default limits except ``HAVATAR_RELAY_USER_RATE`` (a user may send
more than the web UI's 50 Hz, so that a few hundred pairs can carry the load) and no
per-address connection cap (every client here is 127.0.0.1). The CPU each relay process and
the workers used during a step is printed beside it, and the machine's load average before
the run: the machine is shared, so compare figures from the same run only. ``us/drive`` is
the relay's CPU time (every relay process and Redis) per acked drive: what a drive costs
whatever share of the CPU the machine gives the relay, and the steadiest figure to compare.
``--baseline REV`` first runs the same steps against the relay as of a git revision
(its havatar_relay and havatar_common, extracted with ``git archive``).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from havatar_testing import ProcessManager, find_program, free_port, ros_executable  # noqa: E402

try:  # optional: the generator is lighter with them, the figures are the relay's either way
    import orjson

    def dumps(obj: Any) -> str:
        return orjson.dumps(obj).decode()
    loads = orjson.loads
except ImportError:  # pragma: no cover
    dumps = json.dumps
    loads = json.loads

TICK_S = 0.02  # the drives due in a tick go out together (pipelined)


def now_ms() -> float:
    return time.time() * 1000.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float('nan')
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Step:
    """What the workers saw during one step at one offered rate."""

    offered: float
    seconds: float
    sent: int = 0
    delivered: int = 0
    acked: int = 0
    errors: int = 0
    forward_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)

    def add(self, other: dict[str, Any]) -> None:
        self.sent += other['sent']
        self.delivered += other['delivered']
        self.acked += other['acked']
        self.errors += other['errors']
        self.forward_ms += other['forward_ms']
        self.ack_ms += other['ack_ms']

    def passed(self, p99_ms: float) -> bool:
        return (self.sent > 0 and bool(self.forward_ms) and pct(self.forward_ms, 99) < p99_ms
                and self.acked >= 0.97 * self.sent and self.delivered >= 0.97 * self.sent)


# -- worker side ----------------------------------------------------------------------------

class Pair:
    """One user driving one robot; counts drives sent, delivered to the robot, acked."""

    def __init__(self, user: Any, robot: Any) -> None:
        self.user, self.robot = user, robot
        self.seq = 0
        self.closed = False
        self.reset()

    def reset(self) -> None:
        self.sent = self.delivered = self.acked = self.errors = 0
        self.forward_ms: list[float] = []
        self.ack_ms: list[float] = []
        self.recording = False

    async def read(self) -> None:
        """Both connections' readers; a connection the relay closes counts as an error."""
        for reader in asyncio.as_completed([self.read_robot(), self.read_user()]):
            try:
                await reader
            except (ConnectionError, RuntimeError):
                pass
            self.closed = True

    async def read_robot(self) -> None:
        ws = self.robot
        async for frame in ws:
            if frame.type != 1:  # aiohttp.WSMsgType.TEXT
                continue
            m = loads(frame.data)
            kind = m.get('type')
            if kind == 'drive':
                now = now_ms()
                if self.recording:
                    self.delivered += 1
                    self.forward_ms.append(now - m['origin_ts'])
                await ws.send_str(dumps({'type': 'ack', 'id': m['id'], 'seq': m['seq'], 'sent_ts': m['origin_ts'],
                                         'relay_ts': m['ts'], 'robot_ts': now, 'executed': True}))
            elif kind == 'ping':
                await ws.send_str(dumps({'type': 'pong', 'ts': m['ts'], 'peer_ts': now_ms()}))

    async def read_user(self) -> None:
        ws = self.user
        async for frame in ws:
            if frame.type != 1:
                continue
            m = loads(frame.data)
            kind = m.get('type')
            if kind == 'ack':
                if self.recording:
                    self.acked += 1
                    self.ack_ms.append(now_ms() - m['sent_ts'])
            elif kind == 'ping':
                await ws.send_str(dumps({'type': 'pong', 'ts': m['ts'], 'peer_ts': now_ms()}))
            elif kind == 'error' and self.recording:
                self.errors += 1

    async def send(self, count: int) -> None:
        if self.closed:
            self.errors += count
            return
        try:
            for _ in range(count):
                await self.user.send_str(dumps({'type': 'drive', 'seq': self.seq, 'ts': now_ms(),
                                                'linear': 0.1, 'angular': 0.0}))
                self.seq += 1
                if self.recording:
                    self.sent += 1
        except ConnectionError:
            self.closed = True


async def hello(session: Any, base: str, role: str, token: str, robot: str) -> Any:
    # users offer permessage-deflate as browsers do; robots (cloud_client) do not
    ws = await session.ws_connect(base.replace('http', 'ws', 1) + '/ws', max_msg_size=0,
                                  compress=15 if role == 'user' else 0)
    await ws.send_str(dumps({'type': 'hello', 'v': 1, 'role': role, 'token': token, 'robot_id': robot}))
    welcome = loads((await ws.receive(timeout=30)).data)
    if welcome.get('type') != 'welcome':
        raise RuntimeError(f'{role} {robot}: {welcome}')
    return ws


async def worker_main(pairs: list[tuple[int, str, str]], commands: Any, results: Any) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sessions: list[Pair] = []
        readers = []
        for index, user_base, robot_base in pairs:  # each read at once: the relay pings them
            robot = await hello(session, robot_base, 'robot', f'robot{index}-token', f'robot{index}')
            user = await hello(session, user_base, 'user', f'user{index}-token', f'robot{index}')
            await user.send_str(dumps({'type': 'take_control'}))
            sessions.append(Pair(user, robot))
            readers.append(asyncio.create_task(sessions[-1].read()))
        loop = asyncio.get_running_loop()
        results.put('ready')
        while True:
            command = await loop.run_in_executor(None, commands.get)
            if command is None:
                break
            rate, start, warmup, seconds = command  # rate: drives/s for this worker
            per_pair = rate / len(sessions)
            await asyncio.sleep(max(0.0, start - time.time()))
            begin = time.monotonic()
            due = [0.0] * len(sessions)
            recording_from, end = begin + warmup, begin + warmup + seconds
            recording = False
            while True:
                now = time.monotonic()
                if now >= end:
                    break
                if not recording and now >= recording_from:
                    recording = True
                    for s in sessions:
                        s.reset()
                        s.recording = True
                sends = []
                target = per_pair * (now - begin)  # by the clock: a late tick sends more
                for i, s in enumerate(sessions):
                    n = int(target - due[i])
                    if n:
                        due[i] += n
                        sends.append(s.send(n))
                await asyncio.gather(*sends)
                await asyncio.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
            await asyncio.sleep(0.5)  # the last drives' acks
            for s in sessions:
                s.recording = False
            results.put({'sent': sum(s.sent for s in sessions), 'delivered': sum(s.delivered for s in sessions),
                         'acked': sum(s.acked for s in sessions), 'errors': sum(s.errors for s in sessions),
                         'forward_ms': [x for s in sessions for x in s.forward_ms],
                         'ack_ms': [x for s in sessions for x in s.ack_ms]})
        for t in readers:
            t.cancel()
        for s in sessions:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await s.user.send_str(dumps({'type': 'stop'}))
            await s.user.close()
            await s.robot.close()


def worker(pairs: list[tuple[int, str, str]], commands: Any, results: Any) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(worker_main(pairs, commands, results))


# -- coordinator ----------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and its reaped children) in seconds."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf('SC_CLK_TCK')


class Load:
    """Worker processes holding ``pairs`` connection pairs, driven step by step."""

    def __init__(self, pairs: list[tuple[int, str, str]], workers: int) -> None:
        ctx = mp.get_context('spawn')
        self.results: Any = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(workers)]
        self.processes = [ctx.Process(target=worker, args=(pairs[w::workers], self.commands[w], self.results),
                                      daemon=True) for w in range(workers)]
        for process in self.processes:
            process.start()
        for _ in self.processes:
            ready = self.results.get(timeout=120)
            assert ready == 'ready', ready

    def step(self, rate: float, warmup: float, seconds: float,
             relay_pids: list[int]) -> tuple[Step, list[float], float]:
        start = time.time() + 0.3
        for queue in self.commands:
            queue.put((rate / len(self.commands), start, warmup, seconds))
        time.sleep(max(0.0, start + warmup - time.time()))
        before = [cpu_seconds(pid) for pid in relay_pids]
        workers_before = sum(cpu_seconds(p.pid) for p in self.processes)  # type: ignore[arg-type]
        time.sleep(seconds)
        relay_cpu = [(cpu_seconds(pid) - b) / seconds * 100 for pid, b in zip(relay_pids, before)]
        workers_cpu = (sum(cpu_seconds(p.pid) for p in self.processes) - workers_before) / seconds * 100  # type: ignore[arg-type]
        step = Step(rate, seconds)
        for _ in self.processes:
            step.add(self.results.get(timeout=60))
        return step, relay_cpu, workers_cpu

    def close(self) -> None:
        for queue in self.commands:
            queue.put(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


def start_relay(pm: ProcessManager, config: Path, name: str, user_rate: float, redis_url: str = '',
                code: str = '') -> tuple[str, int]:
    """A relay_server; ``code``: a directory whose havatar_relay/havatar_common it runs instead."""
    port = free_port()
    argv = [ros_executable('havatar_relay', 'relay_server'), '--config', str(config),
            '--host', '127.0.0.1', '--port', str(port), '--instance-id', name]
    if redis_url:
        argv += ['--redis-url', redis_url]
    env = {'HAVATAR_RELAY_USER_RATE': str(user_rate), 'HAVATAR_RELAY_USER_BURST': str(2 * user_rate),
           'HAVATAR_RELAY_MAX_CONNECTIONS_PER_CLIENT': '0'}
    if code:
        env['PYTHONPATH'] = os.pathsep.join([code, os.environ.get('PYTHONPATH', '')])
    process = pm.start(name, argv, env=env)
    process.wait_for_http(f'http://127.0.0.1:{port}/health', timeout=30, ok=lambda s: s == 200)
    return f'http://127.0.0.1:{port}', process.pid


def checkout(rev: str, into: Path) -> str:
    """The relay's packages as of git revision ``rev``, extracted under ``into``."""
    repo = Path(__file__).resolve().parents[3]
    archive = subprocess.run(['git', '-C', str(repo), 'archive', rev, 'src/havatar_relay/havatar_relay',
                              'src/havatar_common/havatar_common'], check=True, capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', str(into)], input=archive, check=True)
    code = into / 'code'
    code.mkdir()
    for package in ('havatar_relay', 'havatar_common'):
        (into / 'src' / package / package).rename(code / package)
    return str(code)


def sweep(name: str, load: Load, rates: list[float], options: argparse.Namespace, pids: list[int]) -> float:
    print(f'\n{name}')
    print(f'  {"offered/s":>9} {"sent/s":>8} {"acked/s":>8} {"fwd p50":>8} {"fwd p99":>8} {"ack p99":>8} '
          f'{"errors":>6} {"relay CPU %":>14} {"us/drive":>8} {"workers %":>9}  verdict')
    best, ceiling, cost, latency_ok = 0.0, 0.0, [], True
    for rate in rates:
        step, relay_cpu, workers_cpu = load.step(rate, options.warmup, options.seconds, pids)
        ok = step.passed(options.p99_ms)
        cpu = '+'.join(f'{c:.0f}' for c in relay_cpu)
        acked = min(step.acked, step.sent) / step.seconds  # acks of drives sent before the step: not counted
        # relay CPU (every relay process and Redis) per acked drive: what a drive costs the
        # relay whatever share of the CPU the shared machine gives it
        us = sum(relay_cpu) / 100 / acked * 1e6 if acked else float('nan')
        if acked:
            cost.append(us)
        through = step.passed(float('inf')) and step.sent >= 0.95 * rate * step.seconds  # the workers kept up
        verdict = 'ok' if ok and through else 'over p99' if through else 'saturated'
        print(f'  {rate:9.0f} {step.sent / step.seconds:8.0f} {acked:8.0f} '
              f'{pct(step.forward_ms, 50):8.2f} {pct(step.forward_ms, 99):8.2f} {pct(step.ack_ms, 99):8.2f} '
              f'{step.errors:6d} {cpu:>14} {us:8.0f} {workers_cpu:9.0f}  {verdict}', flush=True)
        # past the latency bound the climb goes on while every drive still gets through:
        # the throughput ceiling, whatever the latency on a machine shared with others
        if not through:
            break
        latency_ok = latency_ok and ok
        if latency_ok:
            best = acked
        ceiling = acked
    per_drive = min(cost) if cost else float('nan')
    print(f'  => saturation throughput (p99 forward < {options.p99_ms:g} ms): {best:.0f} acked drives/s; '
          f'ceiling (all delivered, any latency): {ceiling:.0f}/s;\n'
          f'     relay CPU {per_drive:.0f} us per drive (best step) = {1e6 / per_drive:.0f} drives/s per busy core')
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workers', type=int, default=3, help='load generator processes')
    parser.add_argument('--pairs', type=int, default=100, help='user/robot connection pairs')
    parser.add_argument('--start', type=float, default=500, help='first offered rate, drives/s')
    parser.add_argument('--step', type=float, default=500, help='offered rate increment, drives/s')
    parser.add_argument('--max', type=float, default=30000, help='last offered rate, drives/s')
    parser.add_argument('--seconds', type=float, default=4.0, help='measured time per step')
    parser.add_argument('--warmup', type=float, default=1.0, help='unmeasured time before each step')
    parser.add_argument('--p99-ms', type=float, default=25.0, help='forwarding latency bound')
    parser.add_argument('--only', choices=('one', 'two'), help='run one phase only')
    parser.add_argument('--baseline', metavar='REV', help='first run the relay as of this git revision')
    options = parser.parse_args()
    rates = [options.start + i * options.step for i in range(int((options.max - options.start) / options.step) + 1)]
    user_rate = max(60.0, 2 * options.max / options.pairs)
    work = Path(tempfile.mkdtemp(prefix='havatar-relay-load-'))
    pm = ProcessManager(work, dict(os.environ))
    config = work / 'relay.yaml'
    config.write_text(yaml.safe_dump({
        'robots': {f'robot{i}': {'token': f'robot{i}-token'} for i in range(options.pairs)},
        'users': {f'user{i}': {'token': f'user{i}-token', 'robots': [f'robot{i}']} for i in range(options.pairs)}}))
    print(f'load average before the run: {" ".join(Path("/proc/loadavg").read_text().split()[:3])} '
          f'({os.cpu_count()} cores); {options.pairs} pairs in {options.workers} worker processes')
    variants = [('this tree', '')]
    if options.baseline:
        variants.insert(0, (f'baseline {options.baseline}', checkout(options.baseline, work)))
    summary = []
    try:
        for label, code in variants:
            one = two = 0.0
            if options.only in (None, 'one'):
                base, pid = start_relay(pm, config, 'relay-one', user_rate, code=code)
                load = Load([(i, base, base) for i in range(options.pairs)], options.workers)
                try:
                    one = sweep(f'1. {label}: one relay_server instance (memory state)', load, rates, options, [pid])
                finally:
                    load.close()
                pm.stop_all()
            if options.only in (None, 'two'):
                redis_port = free_port()
                redis = pm.start('redis', [find_program('redis-server'), '--port', str(redis_port), '--bind',
                                           '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', str(work)])
                redis.wait_for_port(redis_port)
                redis_url = f'redis://127.0.0.1:{redis_port}/0'
                relays = [start_relay(pm, config, f'relay-{n}', user_rate, redis_url, code) for n in 'ab']
                # user i on instance i % 2, its robot on (i // 2) % 2: half the drives cross instances
                pairs = [(i, relays[i % 2][0], relays[(i // 2) % 2][0]) for i in range(options.pairs)]
                load = Load(pairs, options.workers)
                try:
                    two = sweep(f'2. {label}: two relay_server instances sharing Redis (CPU: a+b+redis)',
                                load, rates, options, [relays[0][1], relays[1][1], redis.pid])
                finally:
                    load.close()
                pm.stop_all()
            summary.append(f'  {label:30} one: {one:7.0f}/s   two: {two:7.0f}/s   two/one: '
                           + (f'{two / one:.2f}x' if one and two else '-'))
        print('\nsaturation throughput (acked drives/s at p99 forward < %g ms)' % options.p99_ms)
        print('\n'.join(summary))
        print(f'load average after the run: {" ".join(Path("/proc/loadavg").read_text().split()[:3])}')
    finally:
        pm.stop_all()
    return 0


if __name__ == '__main__':
    sys.exit(main())
