"""The simulated robot base for tests: the ESP32 simulator and the motor node."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from havatar_bringup.graph import parameter_arguments
from havatar_bringup.processes import ManagedProcess, ProcessManager, wait_until
from havatar_drivers.esp32.simulator import SimControl, read_record
from .ros import ros_executable


@dataclass
class Esp32Sim:
    """A running ``esp32_sim``: its port, its control socket and its record of lines."""

    process: ManagedProcess
    port: Path
    record_path: Path
    control: SimControl

    def lines(self) -> list[tuple[float, str]]:
        return read_record(self.record_path)

    def commands(self) -> list[tuple[float, str]]:
        """Recorded lines without the STATUS probes."""
        return [(t, line) for t, line in self.lines() if line != 'STATUS']

    def wait_for_line(self, predicate: Callable[[str], bool], after: float = 0.0,
                      timeout: float = 10.0) -> tuple[float, str]:
        def find() -> tuple[float, str] | None:
            return next(((t, line) for t, line in self.lines() if t >= after and predicate(line)), None)
        return wait_until(find, timeout, 'a matching line at the simulator')  # type: ignore[return-value]


@pytest.fixture
def start_sim(processes: ProcessManager, tmp_path: Path) -> Callable[..., Esp32Sim]:
    def start(dialect: str = 'v1', name: str = 'esp32') -> Esp32Sim:
        base = tmp_path / name
        base.mkdir()
        sim = Esp32Sim(
            processes.start(f'esp32_sim-{dialect}', [
                ros_executable('havatar_drivers', 'esp32_sim'), '--dialect', dialect,
                '--link', base / 'tty', '--record', base / 'record.jsonl',
                '--control', base / 'control.sock']),
            base / 'tty', base / 'record.jsonl', SimControl(base / 'control.sock'))
        sim.process.wait_for_output(r'^port: ', timeout=15)
        return sim
    return start


@pytest.fixture
def start_motor_node(processes: ProcessManager) -> Callable[..., ManagedProcess]:
    def start(port: Path | str, **params: object) -> ManagedProcess:
        node = processes.start('motor_node', [
            ros_executable('havatar_drivers', 'motor_node'), '--ros-args',
            *parameter_arguments({'serial_port': port, **params})])
        node.wait_for_output(r'driving the ESP32', timeout=20)
        return node
    return start
