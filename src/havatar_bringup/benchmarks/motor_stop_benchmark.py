"""Benchmark: how soon v1 firmware gets STOP after a SIGKILL of the motor node under ``ros2 launch``.

    . scripts/env.sh && python src/havatar_bringup/benchmarks/motor_stop_benchmark.py [--kills 10]

Runs what robot.launch.py ``sim:=true`` runs for the motors (the graph's ESP32 simulator,
motor_guard and motor_node, with the executables and arguments ``command_line`` gives),
drives forward from a ``cmd_vel`` publisher, SIGKILLs the motor node and respawns it after
its ``respawn_delay`` as launch does, ``--kills`` times. Prints, from the simulator's record,
the delay from the SIGKILL to the first STOP (motor_guard's) and to the respawned node's own,
then the same kills without motor_guard: the baseline, what launch gave before (only the
respawned node stops the motors).
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from geometry_msgs.msg import Twist  # noqa: E402

from havatar_bringup.graph import GraphArgs, NodeEntry, command_line, find_executable, robot_graph  # noqa: E402
from havatar_bringup.processes import ManagedProcess, ProcessManager  # noqa: E402
from havatar_drivers.esp32.simulator import read_record  # noqa: E402
from havatar_testing import RosTestNode, wait_until  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment, shm_profile_environment  # noqa: E402

FORWARD_PWM = 'PWM 128 128'  # 0.25 m/s with the default kinematics


def line_after(record: Path, wanted: str, after: float, timeout: float = 30.0) -> float:
    def find() -> float | None:
        return next((t for t, line in read_record(record) if t > after and line == wanted), None)
    return wait_until(find, timeout, f'{wanted!r} at the simulator')  # type: ignore[return-value]


def run(pm: ProcessManager, work: Path, kills: int, guarded: bool) -> tuple[list[float], list[float]]:
    """(first STOP, the respawned node's STOP) delays after each SIGKILL, in seconds."""
    sim_dir = work / ('guarded' if guarded else 'unguarded')
    sim_dir.mkdir()
    graph = {e.executable: e for e in robot_graph(GraphArgs(sim=True, sim_dir=str(sim_dir)))}
    record = sim_dir / 'record.jsonl'
    started: list[ManagedProcess] = []

    def start(entry: NodeEntry, name: str) -> ManagedProcess:
        executable = find_executable(entry)
        if executable is None:
            raise RuntimeError(f'{entry.executable} is not built (colcon build)')
        process = pm.start(f'{sim_dir.name}-{name}', command_line(entry, executable))
        if entry.ready_output:
            process.wait_for_output(entry.ready_output, timeout=30)
        started.append(process)
        return process

    start(graph['esp32_sim'], 'esp32_sim')
    if guarded:
        start(graph['motor_guard'], 'motor_guard')
    motor_entry = graph['motor_node']
    motor = start(motor_entry, 'motor_node-0')
    first, respawned = [], []
    since = 0.0
    for kill in range(1, kills + 1):
        line_after(record, FORWARD_PWM, after=since)
        killed = time.time()
        motor.signal(signal.SIGKILL)
        motor.popen.wait()
        time.sleep(motor_entry.respawn_delay)  # as launch respawns it
        restart = time.time()
        motor = start(motor_entry, f'motor_node-{kill}')
        respawned.append(line_after(record, 'STOP', after=restart) - killed)
        first.append(line_after(record, 'STOP', after=killed) - killed)
        since = restart
    for process in reversed(started):
        process.stop()
    return first, respawned


def spread(values: list[float]) -> str:
    return (f'{len(values):3} {1000 * min(values):9.1f} {1000 * statistics.median(values):9.1f} '
            f'{1000 * max(values):9.1f}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--kills', type=int, default=10, help='SIGKILLs per run')
    options = parser.parse_args()
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    os.environ.update(shm_profile_environment())  # as robot.launch.py runs the nodes
    work = Path(tempfile.mkdtemp(prefix='havatar-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    node = RosTestNode(lease.domain_id, 'motor_stop_benchmark')
    forward = Twist()
    forward.linear.x = 0.25
    cmd_vel = node.node.create_publisher(Twist, 'cmd_vel', 10)
    node.node.create_timer(0.05, lambda: cmd_vel.publish(forward))  # an operator driving
    try:
        guarded_first, guarded_node = run(pm, work, options.kills, guarded=True)
        baseline_first, baseline_node = run(pm, work, options.kills, guarded=False)
        print('SIGKILL of the motor node -> STOP at the v1 simulator (ms)')
        print(f'{"":52} {"n":>3} {"min":>9} {"median":>9} {"max":>9}')
        print(f'{"with motor_guard: first STOP (motor_guard)":52} {spread(guarded_first)}')
        print(f'{"with motor_guard: the respawned node":52} {spread(guarded_node)}')
        print(f'{"baseline, no motor_guard: the respawned node":52} {spread(baseline_first)}')
        print(f'median ratio baseline / motor_guard: '
              f'{statistics.median(baseline_first) / statistics.median(guarded_first):.0f}x')
    finally:
        node.close()
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
