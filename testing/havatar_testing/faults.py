"""The fault suite's rig: a robot on simulated hardware behind one or two relay instances
that share Redis, a driver holding a command, and the figures each fault test reports.

Times are read from the ESP32 simulator's record (its own clock stamps every line it
receives), so a stop time is the time from the fault to the ``STOP`` line at the "motors".
Every test prints its figures; with ``HAVATAR_FAULT_REPORT`` set to a file path they are
also appended there as JSON lines (``benchmarks/fault_table.py`` prints the table).
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pytest

from havatar_bringup.processes import ManagedProcess, ProcessManager
from .relay import Client
from .robot import Esp32Sim

FULL = 'PWM 255 255'  # motor_control forward at speed 255 with the test robot's limits


def report(fault: str, stop_s: Optional[float], recovery_s: Optional[float], note: str = '') -> None:
    """Print one row of the fault table (and append it to $HAVATAR_FAULT_REPORT)."""
    row = {'fault': fault, 'stop_s': stop_s, 'recovery_s': recovery_s, 'note': note}
    shown = ', '.join(f'{k} {v:.3f}' for k, v in (('stop_s', stop_s), ('recovery_s', recovery_s))
                      if v is not None)
    print(f'\nFAULT {fault}: {shown} {note}'.rstrip())
    path = os.environ.get('HAVATAR_FAULT_REPORT')
    if path:
        with open(path, 'a') as f:
            f.write(json.dumps(row) + '\n')


@dataclass
class CloudRobot:
    """The robot connected to relay ``robot_on``; relays by name -> base URL."""

    sim: Esp32Sim
    node: ManagedProcess
    relays: dict[str, str]
    processes: ProcessManager
    redis_port: int = 0
    users: list[Client] = field(default_factory=list)

    def process(self, name: str) -> ManagedProcess:
        return next(p for p in reversed(self.processes.processes) if p.name == name)

    async def user(self, relay: str, token: str = 'alice-token', timeout: float = 20.0) -> Client:
        """A user connection on ``relay`` once the robot is online there."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = await Client.connect(self.relays[relay], 'user', token, 'robot1')
                if client.welcome and client.welcome['robot_online']:
                    self.users.append(client)
                    return client
                await client.close()
            except (OSError, asyncio.TimeoutError):
                pass
            assert time.monotonic() < deadline, f'the robot did not come online at {relay}'
            await asyncio.sleep(0.3)

    async def hold_forward(self, user: Client, timeout: float = 10.0) -> float:
        """``user`` takes control and holds forward; returns when the motors run (unix time)."""
        after = time.time()
        await user.send({'type': 'take_control', 'force': True})
        await user.send({'type': 'motor_control', 'direction': 'forward', 'speed': 255,
                         'ts': time.time() * 1000})
        moving, _ = self.sim.wait_for_line(lambda line: line == FULL, after=after, timeout=timeout)
        return moving

    def stop_after(self, t0: float, timeout: float = 10.0) -> float:
        """Seconds from ``t0`` (unix time) to the first STOP at the simulator."""
        stopped, _ = self.sim.wait_for_line(lambda line: line == 'STOP', after=t0, timeout=timeout)
        return stopped - t0

    def stopped_since(self, t0: float) -> bool:
        """Whether a STOP reached the simulator after ``t0`` (unix time)."""
        return any(line == 'STOP' for t, line in self.sim.commands() if t >= t0)

    async def drive_again(self, relay: str, t0: float, timeout: float = 30.0) -> float:
        """Seconds from ``t0`` until a user on ``relay`` moves the robot again."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                user = await self.user(relay, timeout=max(1.0, deadline - time.monotonic()))
                moving = await self.hold_forward(user, timeout=3.0)
                await user.send({'type': 'stop'})
                return moving - t0
            except (TimeoutError, asyncio.TimeoutError, AssertionError, OSError):
                assert time.monotonic() < deadline, f'could not drive again through {relay}'
                await asyncio.sleep(0.3)

    async def close_users(self) -> None:
        for user in self.users:
            try:
                await user.close()
            except Exception:  # already gone with its relay
                pass


@pytest.fixture
def cloud_robot(processes, redis_url, relay_server, relay_robot) -> Callable[..., CloudRobot]:
    """``cloud_robot(relays=('a', 'b'), robot_on='b')``: relay instances sharing Redis and the
    robot connected to ``robot_on``. ``robot_via(port) -> port`` and ``redis_via(port) -> port``
    put something (a proxy) between the robot and its relay, and between relays and Redis.
    """
    def start(relays: tuple[str, ...] = ('a', 'b'), robot_on: str = 'b',
              robot_via: Callable[[int], int] = lambda port: port,
              redis_via: Callable[[int], int] = lambda port: port,
              **robot_params: object) -> CloudRobot:
        redis_port = int(redis_url.rsplit(':', 1)[1].split('/')[0])
        shared = f'redis://127.0.0.1:{redis_via(redis_port)}/0'
        bases = {name: relay_server(redis_url=shared, name=f'relay-{name}') for name in relays}
        port = robot_via(int(bases[robot_on].rsplit(':', 1)[1]))
        sim, _, _, node = relay_robot(relay_url=f'ws://127.0.0.1:{port}/ws', reconnect_max=2.0,
                                      **robot_params)
        return CloudRobot(sim, node, bases, processes, redis_port)
    return start


def run(coro: Any, timeout: float = 120.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))
