"""What the audio_common topics cost the microphone node, and whether they are on time.

    . scripts/env.sh && python src/havatar_drivers/benchmarks/standard_audio_benchmark.py [seconds]

microphone_node (48 kHz tone, 20 ms chunks) runs twice as long as ``seconds``: first with
a subscriber to its own ``audio/mic`` only (the baseline: the web UI and the streaming node
take that), then with one to ``audio/audio`` and ``audio/audio_stamped`` as well (an
audio_common user: audio_play, rosbag). Prints microphone_node's CPU (% of a core) in each,
the chunks per second each topic carried and the capture-to-arrival delay of the stamped one.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from audio_common_msgs.msg import AudioData, AudioDataStamped  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402

from havatar_msgs.msg import AudioChunk  # noqa: E402
from havatar_testing import ProcessManager, RosTestNode, ros_executable, wait_until  # noqa: E402
from havatar_testing.cpu import CpuMeter  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment  # noqa: E402


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.delays: list[float] = []

    def __call__(self, msg) -> None:
        with self.lock:
            self.count += 1
            if hasattr(msg, 'header'):
                self.delays.append((time.time() - msg.header.stamp.sec - msg.header.stamp.nanosec * 1e-9) * 1000)


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    pm = ProcessManager(Path(tempfile.mkdtemp()), dict(os.environ))
    ros = RosTestNode(lease.domain_id, 'audio_watcher')
    try:
        mic = pm.start('mic', [ros_executable('havatar_drivers', 'microphone_node'), '--ros-args',
                               '-p', 'source:=tone'])
        mic.wait_for_output('capturing', timeout=30)
        own = Counter()
        ros.node.create_subscription(AudioChunk, 'audio/mic', own, qos_profile_sensor_data)
        wait_until(lambda: own.count > 10, 20, 'audio/mic chunks')
        print(f'microphone_node, 48 kHz mono tone in 20 ms chunks (50/s); {seconds:g} s each; CPU in % of a core')
        print(f'{"subscribers":44} {"CPU":>6} {"mic/s":>6} {"audio/s":>8} {"stamped/s":>10} {"p50 ms":>7}')
        meter, start = CpuMeter([mic.pid]), own.count
        time.sleep(seconds)
        print(f'{"audio/mic only":44} {meter.percent():6.1f} {(own.count - start) / seconds:6.1f} {"-":>8} '
              f'{"-":>10} {"-":>7}')
        plain, stamped = Counter(), Counter()
        ros.node.create_subscription(AudioData, 'audio/audio', plain, 10)
        ros.node.create_subscription(AudioDataStamped, 'audio/audio_stamped', stamped, 10)
        wait_until(lambda: plain.count > 10 and stamped.count > 10, 20, 'audio_common chunks')
        meter, counts = CpuMeter([mic.pid]), (own.count, plain.count, stamped.count)
        time.sleep(seconds)
        rates = [(now - then) / seconds for now, then in zip((own.count, plain.count, stamped.count), counts)]
        delays = stamped.delays[-int(seconds * 50):]
        print(f'{"audio/mic + audio/audio + audio/audio_stamped":44} {meter.percent():6.1f} {rates[0]:6.1f} '
              f'{rates[1]:8.1f} {rates[2]:10.1f} {statistics.median(delays):7.2f}')
        return 0
    finally:
        ros.close()
        pm.stop_all()
        lease.release()


if __name__ == '__main__':
    sys.exit(main())
