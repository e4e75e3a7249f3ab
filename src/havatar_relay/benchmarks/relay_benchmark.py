"""Relay benchmark: command latency end to end, relay throughput, and scale across two instances.

    . scripts/env.sh && python src/havatar_relay/benchmarks/relay_benchmark.py

1. Latency from a browser-protocol `drive` send to the PWM line reaching the ESP32
   simulator: local mode (client -> relay_node -> motor_node -> simulator) against server
   mode (client -> relay_server -> relay_node -> ...), p50/p99 and the ratio.
2. Drive messages per second one relay_server instance forwards and acks (users driving
   robots as fast as acks return, one outstanding command each).
3. 100 users across 20 robots on two relay instances sharing Redis (users on one, robots
   on the other; 20 drivers, 80 watchers): user-send -> robot-receive latency p50/p99.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from havatar_drivers.esp32.simulator import read_record  # noqa: E402
from havatar_relay import protocol as p  # noqa: E402
from havatar_testing import ProcessManager, find_program, free_port, ros_executable, wait_until  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment  # noqa: E402
from havatar_testing.relay import Client  # noqa: E402

ROBOTS = [f'robot{i}' for i in range(20)]
USERS = {f'user{i}': {'token': f'user{i}-token', 'robots': [ROBOTS[i % 20]]} for i in range(100)}
USERS['local'] = {'token': 'local-token', 'robots': ['*']}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def line(name: str, values: list[float], base: float | None = None) -> str:
    p50 = statistics.median(values)
    ratio = f'{p50 / base:9.2f}' if base else f'{1.0:9.2f}'
    return f'  {name:44} {len(values):5d} {p50:8.2f} {pct(values, 99):8.2f} {ratio}'


def start_relay(pm: ProcessManager, config: Path, redis_url: str = '', name: str = 'relay') -> str:
    port = free_port()
    argv = [ros_executable('havatar_relay', 'relay_server'), '--config', str(config),
            '--host', '127.0.0.1', '--port', str(port), '--instance-id', name]
    if redis_url:
        argv += ['--redis-url', redis_url]
    process = pm.start(name, argv)
    process.wait_for_http(f'http://127.0.0.1:{port}/health', timeout=15, ok=lambda s: s == 200)
    return f'http://127.0.0.1:{port}'


async def chain_latency(base: str, token: str, record: Path, count: int) -> list[float]:
    user = await Client.connect(base, 'user', token, 'robot0')
    latencies = []
    for i in range(count):
        pwm = 20 + i % 200
        sent = time.time()
        await user.send({'type': 'drive', 'seq': i, 'ts': p.now_ms(), 'linear': pwm / 255 * 0.5, 'angular': 0.0})
        target = f'PWM {pwm} {pwm}'
        arrival = await asyncio.get_running_loop().run_in_executor(None, lambda: wait_until(
            lambda: next((t for t, line in read_record(record)[-4:] if line == target and t >= sent), None),
            5, target))
        latencies.append((arrival - sent) * 1000)
        await asyncio.sleep(0.1)
    await user.send({'type': 'stop'})
    await user.close()
    return latencies


async def throughput(base: str, seconds: float, pairs: int = 10) -> float:
    robots = [await Client.connect(base, 'robot', f'{r}-token', r) for r in ROBOTS[:pairs]]
    users = [await Client.connect(base, 'user', USERS[f'user{i}']['token'], ROBOTS[i]) for i in range(pairs)]
    acked = 0
    end = time.monotonic() + seconds

    async def robot_loop(robot: Client) -> None:
        while time.monotonic() < end:
            try:
                m = await robot.next('drive', timeout=1)
            except asyncio.TimeoutError:
                continue
            await robot.send({'type': 'ack', 'id': m['id'], 'seq': m['seq'], 'executed': True})

    async def user_loop(user: Client) -> None:
        nonlocal acked
        seq = 0
        while time.monotonic() < end:
            await user.send({'type': 'drive', 'seq': seq, 'ts': p.now_ms(), 'linear': 0.1, 'angular': 0.0})
            try:
                await user.next('ack', timeout=1)
                acked += 1
            except asyncio.TimeoutError:
                pass
            seq += 1
    await asyncio.gather(*(robot_loop(r) for r in robots), *(user_loop(u) for u in users))
    for c in robots + users:
        await c.close()
    return acked / seconds


async def scale(user_base: str, robot_base: str, seconds: float) -> list[float]:
    robots = {r: await Client.connect(robot_base, 'robot', f'{r}-token', r) for r in ROBOTS}
    users = [await Client.connect(user_base, 'user', USERS[f'user{i}']['token'], ROBOTS[i % 20])
             for i in range(100)]
    latencies: list[float] = []
    end = time.monotonic() + seconds

    async def robot_loop(robot: Client) -> None:
        while time.monotonic() < end + 0.5:
            try:
                m = await robot.next('drive', timeout=1)
            except asyncio.TimeoutError:
                continue
            latencies.append(p.now_ms() - m['ts'])

    async def driver_loop(user: Client) -> None:  # 20 Hz, like the web UI
        seq = 0
        while time.monotonic() < end:
            await user.send({'type': 'drive', 'seq': seq, 'ts': p.now_ms(), 'linear': 0.1, 'angular': 0.0})
            seq += 1
            await asyncio.sleep(0.05)

    await asyncio.gather(*(robot_loop(r) for r in robots.values()),
                         *(driver_loop(u) for u in users[:20]))
    for c in list(robots.values()) + users:
        await c.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--count', type=int, default=100)
    parser.add_argument('--seconds', type=float, default=10.0)
    options = parser.parse_args()
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    work = Path(tempfile.mkdtemp(prefix='havatar-relay-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    config = work / 'relay.yaml'
    config.write_text(yaml.safe_dump({'robots': {r: {'token': f'{r}-token'} for r in ROBOTS},
                                      'users': USERS}))
    try:
        sim_dir = work / 'sim'
        sim_dir.mkdir()
        sim = pm.start('esp32_sim', [ros_executable('havatar_drivers', 'esp32_sim'), '--link', sim_dir / 'tty',
                                     '--record', sim_dir / 'record.jsonl'])
        sim.wait_for_output('^port: ')
        motor = pm.start('motor_node', [ros_executable('havatar_drivers', 'motor_node'), '--ros-args',
                                        '-p', f'serial_port:={sim_dir / "tty"}', '-p', 'max_linear_accel:=0.0'])
        motor.wait_for_output('driving the ESP32', timeout=20)
        relay = start_relay(pm, config)
        http_port = free_port()
        node = pm.start('relay_node', [
            ros_executable('havatar_relay', 'relay_node'), '--ros-args', '-p', 'robot_id:=robot0',
            '-p', f'http_port:={http_port}', '-p', 'http_host:=127.0.0.1',
            '-p', f'settings_file:={work / "settings.json"}', '-p', f'relay_url:={relay.replace("http", "ws")}/ws'],
            env={'HAVATAR_ACCESS_TOKEN': 'local-token', 'HAVATAR_ROBOT_TOKEN': 'robot0-token'})
        node.wait_for_output('web UI on', timeout=20)
        time.sleep(3)  # discovery and the relay connection
        local = asyncio.run(chain_latency(f'http://127.0.0.1:{http_port}', 'local-token',
                                          sim_dir / 'record.jsonl', options.count))
        relayed = asyncio.run(chain_latency(relay, 'local-token', sim_dir / 'record.jsonl', options.count))
        print('1. drive send -> PWM line at the ESP32 simulator (ms)')
        print(f'  {"path":44} {"n":>5} {"p50":>8} {"p99":>8} {"ratio":>9}')
        print(line('local mode: client -> relay_node', local))
        print(line('server mode: client -> relay_server -> node', relayed, statistics.median(local)))

        redis_port = free_port()
        redis = pm.start('redis', [find_program('redis-server'), '--port', str(redis_port), '--bind', '127.0.0.1',
                                   '--save', '', '--appendonly', 'no'])
        redis.wait_for_port(redis_port)
        redis_url = f'redis://127.0.0.1:{redis_port}/0'
        alone = start_relay(pm, config, name='relay-throughput')
        rate = asyncio.run(throughput(alone, options.seconds))
        rate_redis = asyncio.run(throughput(start_relay(pm, config, redis_url, 'relay-redis-1'), options.seconds))
        print('\n2. acked drive messages/s through one instance (10 user/robot pairs, one in flight each)')
        print(f'  memory state: {rate:8.0f} msg/s    Redis state: {rate_redis:8.0f} msg/s')

        a = start_relay(pm, config, redis_url, 'relay-a')
        b = start_relay(pm, config, redis_url, 'relay-b')
        latencies = asyncio.run(scale(a, b, options.seconds))
        print('\n3. 100 users (20 driving at 20 Hz, 80 watching) on instance A, 20 robots on instance B')
        print(f'  user send -> robot receive: n={len(latencies)} p50={statistics.median(latencies):.2f} ms '
              f'p99={pct(latencies, 99):.2f} ms ({len(latencies) / options.seconds:.0f} commands/s)')
    finally:
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
