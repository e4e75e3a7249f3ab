"""v1 firmware keeps its last PWM: under ``ros2 launch`` (no run_robot watchdog) the motors
still get STOP within 2 s of a SIGKILL of the motor node, from motor_guard at once and from
the respawned node the moment it opens the port; and within 0.5 s of a SIGSTOP (a hung node,
which launch leaves alone), from motor_guard.

``ros2 launch`` is not installable here, so the test runs what robot.launch.py runs: the
graph's ESP32 simulator, motor_guard and motor_node with the executables and arguments
``command_line`` gives them, and respawns the motor node after its ``respawn_delay`` as
launch does. The STOP times come from the simulator's record.
"""
from __future__ import annotations

import signal
import statistics
import time
from pathlib import Path

from geometry_msgs.msg import Twist

from havatar_bringup.graph import GraphArgs, NodeEntry, command_line, find_executable, robot_graph
from havatar_drivers.esp32.simulator import read_record
from havatar_testing import wait_until

FORWARD_PWM = 'PWM 128 128'   # 0.25 m/s with the default kinematics
V1_NO_WATCHDOG_BOUND_S = 2.0  # the bound: as soon as v2 firmware stops by itself
STOPPED_NODE_BOUND_S = 0.5    # a hung (SIGSTOPped) motor node, as run_robot's watchdog reaches
KILLS = 3


def sim_line_after(record: Path, wanted: str, after: float, timeout: float = 30.0) -> float:
    """The simulator's time of the first line ``wanted`` received after ``after``."""
    def find() -> float | None:
        return next((t for t, line in read_record(record) if t > after and line == wanted), None)
    return wait_until(find, timeout, f'{wanted!r} at the simulator')  # type: ignore[return-value]


def test_stop_reaches_v1_firmware_at_once_after_a_sigkill_or_sigstop_of_the_motor_node(processes, ros_node, tmp_path):
    sim_dir = tmp_path / 'sim'
    sim_dir.mkdir()
    record = sim_dir / 'record.jsonl'
    graph = {e.executable: e for e in robot_graph(GraphArgs(sim=True, sim_dir=str(sim_dir)))}

    def start(entry: NodeEntry, name: str):
        executable = find_executable(entry)
        assert executable, f'{entry.executable} is built'
        process = processes.start(name, command_line(entry, executable))
        if entry.ready_output:
            process.wait_for_output(entry.ready_output, timeout=30)
        return process

    start(graph['esp32_sim'], 'esp32_sim')
    guard = start(graph['motor_guard'], 'motor_guard')
    forward = Twist()
    forward.linear.x = 0.25
    cmd_vel = ros_node.node.create_publisher(Twist, 'cmd_vel', 10)
    ros_node.node.create_timer(0.05, lambda: cmd_vel.publish(forward))  # an operator driving

    motor_entry = graph['motor_node']
    motor = start(motor_entry, 'motor_node-0')
    guard_stops, node_stops = [], []
    since = 0.0
    for kill in range(1, KILLS + 1):
        sim_line_after(record, FORWARD_PWM, after=since)  # driving: v1 keeps it without us
        killed = time.time()
        motor.signal(signal.SIGKILL)
        stopped = sim_line_after(record, 'STOP', after=killed)
        guard_stops.append(stopped - killed)
        assert stopped - killed < V1_NO_WATCHDOG_BOUND_S, f'kill {kill}: STOP after {stopped - killed:.3f} s'
        time.sleep(motor_entry.respawn_delay)  # launch's respawn_delay, not a readiness wait
        respawned = time.time()
        motor = start(motor_entry, f'motor_node-{kill}')
        node_stops.append(sim_line_after(record, 'STOP', after=respawned) - killed)  # its own, on opening
        since = stopped
    assert guard.running()
    assert guard.output().count('wrote STOP to') == KILLS

    # hung: launch neither kills nor respawns it, and it keeps its lock; the guard sees it
    # stopped in /proc. Resumed, it drives again: it took the guard's STOP ack as a stop.
    sim_line_after(record, FORWARD_PWM, after=since)
    signalled = time.time()
    motor.signal(signal.SIGSTOP)
    stopped = sim_line_after(record, 'STOP', after=signalled)
    assert stopped - signalled < STOPPED_NODE_BOUND_S, f'SIGSTOP: STOP after {stopped - signalled:.3f} s'
    motor.signal(signal.SIGCONT)
    sim_line_after(record, FORWARD_PWM, after=stopped)

    def spread(values: list[float]) -> str:
        return f'min {min(values):.3f} / median {statistics.median(values):.3f} / max {max(values):.3f} s'
    print(f'SIGKILL of the motor node, {KILLS} kills: STOP at the simulator after {spread(guard_stops)} '
          f'(motor_guard); the respawned node (respawn_delay {motor_entry.respawn_delay} s) '
          f'after {spread(node_stops)}; SIGSTOP: after {stopped - signalled:.3f} s')
