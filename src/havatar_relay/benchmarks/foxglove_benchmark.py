"""What watching the camera from Foxglove costs the robot: foxglove_node vs a plain ROS subscriber.

    . scripts/env.sh && python src/havatar_relay/benchmarks/foxglove_benchmark.py [seconds]

camera_node (test pattern, 640x480, 30 Hz) runs with foxglove_node. Three phases of the same
length, CPU of each process in % of one core:
1. nobody watches (the baseline: foxglove_node idle, no JPEG encoded);
2. a ROS subscriber process takes /camera/image_raw/compressed (what rqt_image_view or
   foxglove_bridge cost the camera: the JPEG encoding);
3. a Foxglove client (foxglove.sdk.v1 over WebSocket) watches the same topic instead: the
   extra is foxglove_node's forwarding. Frames/s received and capture-to-client delay shown.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

import aiohttp  # noqa: E402
from mcap.records import Schema  # noqa: E402
from mcap_ros2.decoder import DecoderFactory  # noqa: E402

from havatar_testing import ProcessManager, free_port, ros_executable  # noqa: E402
from havatar_testing.cpu import CpuMeter  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment  # noqa: E402

TOPIC = '/camera/image_raw/compressed'
FPS = 30.0
ROS_SUBSCRIBER = """
import sys, time
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage
rclpy.init()
node = rclpy.create_node('jpeg_watcher')
count = [0]
node.create_subscription(CompressedImage, sys.argv[1], lambda m: count.__setitem__(0, count[0] + 1),
                         qos_profile_sensor_data)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
print(count[0])
"""


async def foxglove_client(port: int, seconds: float, meter_start) -> tuple[int, list[float]]:
    """Watch TOPIC for ``seconds``; the frames and their capture-to-arrival delays (ms)."""
    delays: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(f'ws://127.0.0.1:{port}',
                                                                protocols=('foxglove.sdk.v1',)) as ws:
        channel = None
        while channel is None:
            msg = await ws.receive(timeout=30)
            if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)['op'] == 'advertise':
                channel = next((c for c in json.loads(msg.data)['channels'] if c['topic'] == TOPIC), None)
        decode = DecoderFactory().decoder_for('cdr', Schema(id=channel['id'], name=channel['schemaName'],
                                                            encoding='ros2msg', data=channel['schema'].encode()))
        await ws.send_str(json.dumps({'op': 'subscribe', 'subscriptions': [{'id': 1, 'channelId': channel['id']}]}))
        while (await ws.receive(timeout=30)).type != aiohttp.WSMsgType.BINARY:
            pass  # the first frame: from here on it is steady
        meters = meter_start()
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except asyncio.TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.BINARY and msg.data[0] == 1:
                header = decode(bytes(msg.data[13:])).header
                delays.append((time.time() - header.stamp.sec - header.stamp.nanosec * 1e-9) * 1000)
        return meters, delays


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    lease = DomainLease()
    env = {**os.environ, **ros_environment(lease.domain_id)}
    pm = ProcessManager(Path(tempfile.mkdtemp()), env)
    port = free_port()
    try:
        camera = pm.start('camera', [ros_executable('havatar_drivers', 'camera_node'), '--ros-args', '-p',
                                     'source:=test_pattern', '-p', 'width:=640', '-p', 'height:=480',
                                     '-p', f'fps:={FPS}'])
        camera.wait_for_output('publishing', timeout=30)
        fox = pm.start('foxglove', [ros_executable('havatar_relay', 'foxglove_node'), '--ros-args',
                                    '-p', 'host:=127.0.0.1', '-p', f'port:={port}'])
        fox.wait_for_output(r'server on ws://', timeout=30)
        time.sleep(2.0)  # start-up CPU is not part of any phase

        def meters():
            return CpuMeter([camera.pid]), CpuMeter([fox.pid])

        print(f'camera_node 640x480 at {FPS:g} Hz with foxglove_node; {seconds:g} s a phase; CPU in % of a core')
        print(f'{"phase":44} {"camera":>7} {"foxglove":>9} {"frames/s":>9} {"p50 ms":>7} {"p95 ms":>7}')
        cam, fx = meters()
        time.sleep(seconds)
        rows = {'nobody watches': (cam.percent(), fx.percent(), None, [])}
        cam, fx = meters()
        out = subprocess.run([sys.executable, '-c', ROS_SUBSCRIBER, TOPIC, str(seconds)], env=env,
                             capture_output=True, text=True, timeout=seconds + 30)
        rows['a ROS subscriber takes the JPEGs'] = (cam.percent(), fx.percent(),
                                                    int(out.stdout.split()[-1]) / seconds, [])
        (cam, fx), delays = asyncio.run(foxglove_client(port, seconds, meters))
        rows['a Foxglove client takes them (foxglove_node)'] = (cam.percent(), fx.percent(),
                                                               len(delays) / seconds, delays)
        for name, (c, f, rate, d) in rows.items():
            d = sorted(d)
            p50 = f'{statistics.median(d):7.1f}' if d else f'{"-":>7}'
            p95 = f'{d[int(0.95 * (len(d) - 1))]:7.1f}' if d else f'{"-":>7}'
            print(f'{name:44} {c:7.1f} {f:9.1f} {"-" if rate is None else f"{rate:.1f}":>9} {p50} {p95}')
        base, watched = rows['nobody watches'][1], rows['a Foxglove client takes them (foxglove_node)'][1]
        print(f'foxglove_node forwarding the JPEGs: +{watched - base:.1f} % of a core over its idle {base:.1f} %')
        return 0
    finally:
        pm.stop_all()
        lease.release()


if __name__ == '__main__':
    sys.exit(main())
