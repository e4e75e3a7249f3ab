"""Benchmark of the drivers: cmd_vel-to-serial latency and CPU per node.

    . scripts/env.sh && python src/havatar_drivers/benchmarks/drivers_benchmark.py

1. Latency from a ``cmd_vel`` publish to the PWM line arriving at the ESP32 simulator
   (its record), for both firmware dialects, against a baseline measured in the same run:
   the same line written straight to the simulator's port (the serial path alone). The
   goal: p99 within 1 ms of the baseline's p99 (the "p99 - base" column). A third row is
   the floor of any rclpy node: ``bare_cmd_vel_writer.py`` writes the line in its cmd_vel
   callback (the DDS hop and the rclpy executor, nothing else).
   Section ``link`` splits off the serial link: in this process, ``DriveController.command``
   to the line readable at a bare pseudo-terminal, against writing the line to it directly.
2. CPU of each node (psutil, over ``--seconds``): camera_node at 640x480@30 with a raw
   and a JPEG subscriber, microphone_node (48 kHz tone), speaker_node (playing it to a
   null sink), motor_node while driving at 20 Hz.
"""
from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Any

import serial

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from geometry_msgs.msg import Twist  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from havatar_drivers.drive_controller import DriveController  # noqa: E402
from havatar_drivers.esp32.link import SerialLink  # noqa: E402
from havatar_drivers.esp32.protocol import Dialect  # noqa: E402
from havatar_drivers.esp32.simulator import read_record  # noqa: E402
from havatar_drivers.kinematics import DriveConfig  # noqa: E402
from havatar_testing import ProcessManager, RosTestNode, ros_executable, wait_until  # noqa: E402
from havatar_testing.cpu import CpuMeter  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment, shm_profile_environment  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def start_sim(pm: ProcessManager, base: Path, dialect: str) -> tuple[Path, Path]:
    base.mkdir()
    sim = pm.start(f'esp32_sim-{dialect}', [ros_executable('havatar_drivers', 'esp32_sim'),
                                           '--dialect', dialect, '--link', base / 'tty',
                                           '--record', base / 'record.jsonl'])
    sim.wait_for_output('^port: ', timeout=15)
    return base / 'tty', base / 'record.jsonl'


def direct_serial_latency(port: Path, record: Path, dialect: str, count: int) -> list[float]:
    """Baseline: write PWM lines to the port ourselves and time their arrival."""
    latencies = []
    with serial.Serial(str(port), 115200, timeout=0.05) as link:
        if dialect == 'v2':
            wait_until(lambda: b'initialized' in link.readline(), 10, 'v2 boot')
        for i in range(count):
            line = f'PWM {10 + i % 200} {10 + i % 200}'
            sent = time.time()
            link.write(line.encode() + b'\n')
            arrival = wait_until(lambda: next((t for t, sent in read_record(record)[-3:] if sent == line), None),
                                 5, line)
            latencies.append(arrival - sent)
            time.sleep(0.1)
    return latencies


def node_latency(node: RosTestNode, record: Path, count: int) -> list[float]:
    """cmd_vel with a new speed every 100 ms; match each PWM line to its publish time."""
    pub = node.node.create_publisher(Twist, 'cmd_vel', 10)
    node.wait_for_subscribers(pub)
    sent: dict[str, float] = {}
    for i in range(count):
        speed = 20 + i % 200  # PWM value = speed (max_wheel_speed 0.5 m/s at 255)
        msg = Twist()
        msg.linear.x = speed / 255 * 0.5
        line = f'PWM {speed} {speed}'
        sent[line] = time.time()
        pub.publish(msg)
        time.sleep(0.1)
    time.sleep(0.5)
    latencies = []
    for t, line in read_record(record):
        if line in sent and t >= sent[line]:
            latencies.append(t - sent.pop(line))
    return latencies


def cpu_percents(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """CPU of each named process tree over the same ``seconds``, in % of one core."""
    meters = {name: CpuMeter([pid]) for name, pid in pids.items()}
    time.sleep(seconds)
    return {name: meter.percent() for name, meter in meters.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--count', type=int, default=100, help='commands per latency run')
    parser.add_argument('--seconds', type=float, default=10.0, help='CPU measuring window')
    parser.add_argument('--sections', default='latency,link,motor-cpu,cpu',
                        help='comma-separated: latency (cmd_vel to serial), link (the serial link '
                        'alone, in-process), cpu (every node), motor-cpu (motor_node alone)')
    options = parser.parse_args()
    sections = set(options.sections.split(','))
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    os.environ.update(shm_profile_environment())  # as robot.launch.py runs the nodes
    work = Path(tempfile.mkdtemp(prefix='havatar-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    node = RosTestNode(lease.domain_id, 'drivers_benchmark')
    try:
        if 'latency' in sections:
            latency(pm, node, work, options.count)
        if 'link' in sections:
            link_latency(options.count)
        if 'motor-cpu' in sections:
            motor_cpu(pm, node, work, options.seconds)
        if 'cpu' in sections:
            node_cpu(pm, node, work, options.seconds)
    finally:
        node.close()
        pm.stop_all()
        lease.release()
    return 0


def latency(pm: ProcessManager, node: RosTestNode, work: Path, count: int) -> None:
    """cmd_vel to the simulator's record through motor_node, and the direct-write baseline."""
    print('cmd_vel -> serial line at the ESP32 simulator (ms)')
    print(f'{"dialect":8} {"path":24} {"n":>4} {"p50":>7} {"p99":>7} {"ratio p50":>9} '
          f'{"ratio p99":>9} {"p99 - base":>10}')
    for dialect in ('v1', 'v2'):
        port, record = start_sim(pm, work / f'direct-{dialect}', dialect)
        base = direct_serial_latency(port, record, dialect, count)
        port, record = start_sim(pm, work / f'node-{dialect}', dialect)
        motor = pm.start(f'motor_node-{dialect}', [
            ros_executable('havatar_drivers', 'motor_node'), '--ros-args', '-p',
            f'serial_port:={port}', '-p', 'max_linear_accel:=0.0', '-p', f'dialect:={dialect}'])
        motor.wait_for_output('driving the ESP32', timeout=20)
        if dialect == 'v2':
            time.sleep(3.5)  # the simulated v2 boots for 3.2 s
        ours = node_latency(node, record, count)
        motor.stop()
        # the same node on rclpy's SingleThreadedExecutor (what spin_node used before the
        # EventsExecutor): robot_container runs it with the executor asked for
        port, record = start_sim(pm, work / f'single-{dialect}', dialect)
        single_node = pm.start(f'motor_node-single-{dialect}', [
            ros_executable('havatar_bringup', 'robot_container'), '--executor', 'single', 'motor_node',
            '--ros-args', '-p', f'serial_port:={port}', '-p', 'max_linear_accel:=0.0', '-p', f'dialect:={dialect}',
            '--'])
        single_node.wait_for_output('driving the ESP32', timeout=20)
        if dialect == 'v2':
            time.sleep(3.5)
        single = node_latency(node, record, count)
        single_node.stop()
        port, record = start_sim(pm, work / f'bare-{dialect}', dialect)
        bare_node = pm.start(f'bare-{dialect}', [sys.executable, Path(__file__).with_name('bare_cmd_vel_writer.py'),
                                                 port])
        bare_node.wait_for_output('driving the ESP32', timeout=20)
        if dialect == 'v2':
            time.sleep(3.5)
        bare = node_latency(node, record, count)
        bare_node.stop()
        b50, o50 = statistics.median(base) * 1e3, statistics.median(ours) * 1e3
        b99, o99 = percentile(base, 99) * 1e3, percentile(ours, 99) * 1e3
        print(f'{dialect:8} {"direct write (baseline)":24} {len(base):4} {b50:7.2f} '
              f'{b99:7.2f} {1.0:9.2f} {1.0:9.2f} {0.0:10.2f}')
        print(f'{dialect:8} {"cmd_vel via motor_node":24} {len(ours):4} {o50:7.2f} '
              f'{o99:7.2f} {o50 / b50:9.2f} {o99 / b99:9.2f} {o99 - b99:10.2f}')
        s50, s99 = statistics.median(single) * 1e3, percentile(single, 99) * 1e3
        print(f'{dialect:8} {"  ...SingleThreadedExec.":24} {len(single):4} {s50:7.2f} '
              f'{s99:7.2f} {s50 / b50:9.2f} {s99 / b99:9.2f} {s99 - b99:10.2f}')
        f50, f99 = statistics.median(bare) * 1e3, percentile(bare, 99) * 1e3
        print(f'{dialect:8} {"bare rclpy node (floor)":24} {len(bare):4} {f50:7.2f} '
              f'{f99:7.2f} {f50 / b50:9.2f} {f99 / b99:9.2f} {f99 - b99:10.2f}')


def link_latency(count: int) -> None:
    """In-process: a command to its line at a pty, against a direct write (no DDS, no simulator)."""
    print('\nDriveController.command -> line at a pseudo-terminal, in-process (ms)')
    master, slave = os.openpty()
    tty.setraw(slave)
    controller = DriveController(DriveConfig(max_linear_accel=0.0, max_angular_accel=0.0), 5.0)
    link = SerialLink(os.ttyname(slave), controller, dialect=Dialect.V1)
    link.start()

    def arrival(start: float) -> float:
        select.select([master], [], [], 5.0)
        elapsed = time.perf_counter() - start
        os.read(master, 1024)
        return elapsed
    try:
        arrival(time.perf_counter())  # the first STOP
        time.sleep(0.1)
        base, ours = [], []
        for i in range(count):
            start = time.perf_counter()
            os.write(slave, b'PWM 1 1\n')  # the far end reads our own write: the tty path alone
            base.append(arrival(start))
            start = time.perf_counter()
            controller.command(0.05 + 0.004 * (i % 100), 0.0, time.monotonic())  # a new PWM each time
            ours.append(arrival(start))
            time.sleep(0.06)  # v1 takes a line every 50 ms
    finally:
        link.close()
        os.close(master)
        os.close(slave)
    b50, b99 = statistics.median(base) * 1e3, percentile(base, 99) * 1e3
    o50, o99 = statistics.median(ours) * 1e3, percentile(ours, 99) * 1e3
    print(f'{"v1":8} {"direct write (baseline)":24} {len(base):4} {b50:7.3f} {b99:7.3f}')
    print(f'{"v1":8} {"command via SerialLink":24} {len(ours):4} {o50:7.3f} {o99:7.3f} '
          f'ratio p50 {o50 / b50:.2f}, p99 - base {o99 - b99:.3f}')


def drive_at(pub: Any, stop: threading.Event, period: float = 0.05) -> None:
    """Publish a slowly changing forward speed every ``period`` until ``stop``."""
    i = 0
    while not stop.is_set():
        msg = Twist()
        msg.linear.x = 0.1 + 0.001 * (i % 100)
        pub.publish(msg)
        i += 1
        stop.wait(period)


def motor_cpu(pm: ProcessManager, node: RosTestNode, work: Path, seconds: float) -> None:
    """CPU of motor_node alone while cmd_vel arrives at 20 Hz, for each dialect."""
    print(f'\nmotor_node CPU while driving at 20 Hz, over {seconds:g} s (% of one core)')
    pub = node.node.create_publisher(Twist, 'cmd_vel', 10)
    ways = {'spin_node': [ros_executable('havatar_drivers', 'motor_node')],
            'SingleThreadedExecutor': [ros_executable('havatar_bringup', 'robot_container'), '--executor', 'single',
                                       'motor_node']}
    for dialect, (way, command) in [(d, w) for d in ('v1', 'v2') for w in ways.items()]:
        port, _ = start_sim(pm, work / f'motor-cpu-{dialect}-{way}', dialect)
        motor = pm.start(f'motor-cpu-{dialect}-{way}', [
            *command, '--ros-args', '-p', f'serial_port:={port}', '-p', f'dialect:={dialect}', '--'])
        motor.wait_for_output('driving the ESP32', timeout=20)
        node.wait_for_subscribers(pub)
        stop = threading.Event()
        driver = threading.Thread(target=drive_at, args=(pub, stop), daemon=True)
        driver.start()
        time.sleep(3.5 if dialect == 'v2' else 1.0)  # past the v2 boot
        usage = cpu_percents({dialect: motor.pid}, seconds)
        stop.set()
        driver.join()
        motor.stop()
        print(f'  {dialect:4} {way:24} {usage[dialect]:6.2f} %')


def node_cpu(pm: ProcessManager, node: RosTestNode, work: Path, seconds: float) -> None:
    """CPU of every driver node at once (the camera with a raw and a JPEG subscriber)."""
    print(f'\nCPU per node over {seconds:g} s (% of one core, children included)')
    port, _ = start_sim(pm, work / 'cpu', 'v1')
    started = {
        'camera_node 640x480@30': pm.start('camera', [
            ros_executable('havatar_drivers', 'camera_node'), '--ros-args', '-p',
            'source:=test_pattern', '-p', 'width:=640', '-p', 'height:=480', '-p', 'fps:=30.0']),
        'microphone_node 48k tone': pm.start('mic', [
            ros_executable('havatar_drivers', 'microphone_node'), '--ros-args',
            '-p', 'source:=tone', '-r', 'audio/mic:=audio/speaker']),
        'speaker_node (null sink)': pm.start('speaker', [
            ros_executable('havatar_drivers', 'speaker_node'), '--ros-args', '-p', 'sink:=null']),
        'motor_node driving 20 Hz': pm.start('motor', [
            ros_executable('havatar_drivers', 'motor_node'), '--ros-args',
            '-p', f'serial_port:={port}']),
    }
    for process in started.values():
        process.wait_for_output('publishing|capturing|playing|driving', timeout=20)
    images = node.subscribe(Image, 'camera/image_raw', qos_profile_sensor_data)
    jpegs = node.subscribe(CompressedImage, 'camera/image_raw/compressed', qos_profile_sensor_data)
    pub = node.node.create_publisher(Twist, 'cmd_vel', 10)
    stop = threading.Event()
    driver = threading.Thread(target=drive_at, args=(pub, stop), daemon=True)
    driver.start()
    time.sleep(2.0)
    images.clear()
    jpegs.clear()
    usage = cpu_percents({name: p.pid for name, p in started.items()},
                        seconds)
    stop.set()
    driver.join()
    for name, value in usage.items():
        print(f'  {name:28} {value:6.1f} %')
    print(f'  (received {len(images.messages) / seconds:.1f} images/s and '
          f'{len(jpegs.messages) / seconds:.1f} JPEGs/s in the benchmark process)')


if __name__ == '__main__':
    sys.exit(main())
