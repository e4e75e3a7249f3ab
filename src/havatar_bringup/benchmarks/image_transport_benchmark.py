"""640x480 rgb8 images between two processes: default Fast DDS profile vs the bringup's.

    . scripts/env.sh && python src/havatar_bringup/benchmarks/image_transport_benchmark.py

camera_node (test pattern, 30 Hz) publishes; a subscriber process (best effort, the
sensor-data QoS) measures receive time - header stamp and the share of frames received.
Each profile runs in fresh processes because Fast DDS reads its profile once per process.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from havatar_testing import ProcessManager, ros_executable  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment, shm_profile_environment  # noqa: E402

SUBSCRIBER = """
import json, sys, time
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node('image_latency')
latencies = []
def on_image(msg):
    latencies.append(time.time() - msg.header.stamp.sec - msg.header.stamp.nanosec * 1e-9)
node.create_subscription(Image, 'camera/image_raw', on_image, qos_profile_sensor_data)
end = time.monotonic() + float(sys.argv[1]) + 3
while time.monotonic() < end and len(latencies) < 3:
    rclpy.spin_once(node, timeout_sec=0.1)
latencies.clear()
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
print(json.dumps(latencies))
"""


def run(profile_env: dict[str, str], seconds: float) -> list[float]:
    lease = DomainLease()
    env = {**os.environ, **ros_environment(lease.domain_id), **profile_env}
    for key in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'):
        if key not in profile_env:
            env.pop(key, None)
    pm = ProcessManager(Path(tempfile.mkdtemp()), env)
    try:
        camera = pm.start('camera', [ros_executable('havatar_drivers', 'camera_node'), '--ros-args',
                                     '-p', 'source:=test_pattern', '-p', 'width:=640', '-p', 'height:=480',
                                     '-p', 'fps:=30.0'])
        camera.wait_for_output('publishing', timeout=20)
        out = subprocess.run([sys.executable, '-c', SUBSCRIBER, str(seconds)], env=env,
                             capture_output=True, text=True, timeout=seconds + 30)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        pm.stop_all()
        lease.release()


def main() -> int:
    seconds = 10.0
    print(f'640x480 rgb8 at 30 Hz, camera_node -> subscriber process, {seconds:g} s each')
    print(f'{"profile":34} {"received":>9} {"mean ms":>8} {"p50 ms":>7} {"p95 ms":>7}')
    results = {}
    for name, env in (('default Fast DDS profile', {}),
                      ('bringup fastdds_shm.xml (16 MB shm)', shm_profile_environment())):
        latencies = [x * 1000 for x in run(env, seconds)]
        results[name] = statistics.median(latencies) if latencies else float('nan')
        ordered = sorted(latencies) or [float('nan')]
        print(f'{name:34} {len(latencies) / (seconds * 30):8.0%} {statistics.fmean(ordered):8.2f} '
              f'{statistics.median(ordered):7.2f} {ordered[int(0.95 * (len(ordered) - 1))]:7.2f}')
    default, shm = results.values()
    print(f'ratio default / shm (p50): {default / shm:.1f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
