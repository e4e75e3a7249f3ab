"""Benchmark: what the twist_mux and the incident recorder cost the driving.

    . scripts/env.sh && python src/havatar_bringup/benchmarks/mux_recorder_benchmark.py [--samples 20]

Runs the graph's ESP32 simulator (v1), motor node, twist_mux and incident recorder (the
executables and arguments ``command_line`` gives) and prints:

- latency from a changed twist published by a test node to the new PWM line at the
  simulator, through the mux (``cmd_vel/web``) and, the baseline in the same run, straight
  on ``cmd_vel``;
- CPU (% of one core) of the mux and the recorder while nobody drives and while a source
  drives at 20 Hz, beside the motor node's;
- the time to write an incident file of 30 s of the recorded topics at the robot's rates,
  and its size.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from ament_index_python.packages import get_package_share_directory  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from geometry_msgs.msg import Twist  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import BatteryState  # noqa: E402

from havatar_bringup.graph import GraphArgs, command_line, find_executable, robot_graph  # noqa: E402
from havatar_bringup.incidents import Record  # noqa: E402
from havatar_bringup.mcap_file import message_definition, write_mcap  # noqa: E402
from havatar_bringup.processes import ProcessManager  # noqa: E402
from havatar_drivers.esp32.simulator import read_record  # noqa: E402
from havatar_msgs.msg import WheelCommand  # noqa: E402
from havatar_testing import RosTestNode, wait_until  # noqa: E402
from havatar_testing.cpu import CpuMeter  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment, shm_profile_environment  # noqa: E402

MEASURED = ('motor_node', 'twist_mux', 'incident_recorder')
SPEEDS = {0.25: 'PWM 128 128', 0.1: 'PWM 51 51'}  # default kinematics, no ramp


def twist(linear: float) -> Twist:
    msg = Twist()
    msg.linear.x = linear
    return msg


def latencies(node: RosTestNode, topic: str, record: Path, samples: int) -> list[float]:
    """Seconds from publishing a new speed on ``topic`` (at 20 Hz) to its PWM line."""
    pub = node.node.create_publisher(Twist, topic, 10)
    node.wait_for_subscribers(pub)
    found = []
    for i in range(samples):
        speed = list(SPEEDS)[i % 2]
        sent = time.time()
        deadline = sent + 10
        while True:
            pub.publish(twist(speed))
            hit = next((t for t, line in read_record(record) if t >= sent and line == SPEEDS[speed]), None)
            if hit is not None:
                found.append(hit - sent)
                break
            assert time.time() < deadline, f'no {SPEEDS[speed]} after publishing on {topic}'
            time.sleep(0.05)
        time.sleep(0.1)
    node.node.destroy_publisher(pub)
    return found


def incident_records(seconds: float = 30.0) -> list[Record]:
    """``seconds`` of the recorded topics at the robot's rates."""
    out: list[Record] = []
    diag = serialize_message(DiagnosticArray(status=[DiagnosticStatus(
        name='motor_node: ESP32 link', message='connected (v1)',
        values=[KeyValue(key=f'key{i}', value='value') for i in range(14)])]))
    for ms in range(0, int(seconds * 1000), 50):  # 20 Hz: the web source, cmd_vel, wheels
        t = ms * 1_000_000
        out += [Record('/cmd_vel/web', 'geometry_msgs/msg/Twist', t, serialize_message(twist(0.25))),
                Record('/cmd_vel', 'geometry_msgs/msg/Twist', t + 1, serialize_message(twist(0.25))),
                Record('/wheel_commands', 'havatar_msgs/msg/WheelCommand', t + 2,
                       serialize_message(WheelCommand(left=128, right=128)))]
        if ms % 125 == 0:  # 8 diagnostics a second (one per node)
            out.append(Record('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', t + 3, diag))
        if ms % 500 == 0:
            out.append(Record('/battery', 'sensor_msgs/msg/BatteryState', t + 4, serialize_message(BatteryState())))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--samples', type=int, default=20, help='speed changes per path')
    options = parser.parse_args()
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    os.environ.update(shm_profile_environment())
    work = Path(tempfile.mkdtemp(prefix='havatar-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    node = RosTestNode(lease.domain_id, 'mux_recorder_benchmark')
    graph = {e.executable: e for e in robot_graph(GraphArgs(sim=True, sim_dir=str(work), twist_mux='havatar'))}
    processes = {}
    try:
        for name in ('esp32_sim', 'motor_node', 'twist_mux', 'incident_recorder'):
            entry = graph[name]
            if name == 'motor_node':
                entry = replace(entry, parameters=(*entry.parameters, {'max_linear_accel': 0.0, 'lock_file': ''}))
            processes[name] = pm.start(name, command_line(entry, find_executable(entry) or entry.executable))
            if entry.ready_output:
                processes[name].wait_for_output(entry.ready_output, timeout=30)
        node.wait_for_publishers('wheel_commands')
        record = work / 'record.jsonl'
        wait_until(lambda: record.exists(), 30, 'the simulator record')
        via_mux = latencies(node, 'cmd_vel/web', record, options.samples)
        time.sleep(1.0)  # the web source times out
        direct = latencies(node, 'cmd_vel', record, options.samples)

        time.sleep(1.0)
        idle_meters = {name: CpuMeter([processes[name].pid]) for name in MEASURED}
        time.sleep(10.0)
        idle = {name: meter.percent() for name, meter in idle_meters.items()}

        pub = node.node.create_publisher(Twist, 'cmd_vel/web', 10)
        node.node.create_timer(0.05, lambda: pub.publish(twist(0.25)))
        meters = {name: CpuMeter([processes[name].pid]) for name in MEASURED}
        time.sleep(10.0)
        cpu = {name: meter.percent() for name, meter in meters.items()}

        records = incident_records()
        types = {r.type_name for r in records}
        definitions = {t: message_definition(t, get_package_share_directory) for t in types}
        path = work / 'bench.mcap'
        t0 = time.perf_counter()
        write_mcap(path, records, definitions, {'havatar_incident': {'reasons': 'deadman'}})
        write_s = time.perf_counter() - t0

        print('twist published -> PWM line at the v1 simulator (ms)')
        print(f'{"":32} {"n":>3} {"min":>8} {"median":>8} {"max":>8}')
        for label, values in (('through twist_mux (cmd_vel/web)', via_mux), ('baseline: straight on cmd_vel', direct)):
            print(f'{label:32} {len(values):3} {1000 * min(values):8.1f} {1000 * statistics.median(values):8.1f} '
                  f'{1000 * max(values):8.1f}')
        print(f'median added by the mux: {1000 * (statistics.median(via_mux) - statistics.median(direct)):.1f} ms')
        print('CPU while nobody drives (% of one core, 10 s): '
              + ', '.join(f'{name} {value:.1f}' for name, value in idle.items()))
        print('CPU while a source drives at 20 Hz (% of one core, 10 s): '
              + ', '.join(f'{name} {value:.1f}' for name, value in cpu.items()))
        print(f'incident file of 30 s ({len(records)} messages): written in {1000 * write_s:.0f} ms, '
              f'{path.stat().st_size / 1000:.0f} kB')
    finally:
        node.close()
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
