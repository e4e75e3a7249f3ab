"""Fault suite: MediaMTX dies while the robot streams to it and a user drives, then returns.

Driving never depends on the media server: the held command goes on, a stop arrives at
once, the stream falls back to local (MJPEG), and server mode comes back by itself.
"""
from __future__ import annotations

import asyncio
import signal
import time

from rclpy.qos import QoSDurabilityPolicy, QoSProfile

from havatar_msgs.msg import StreamStatus
from havatar_testing.faults import report, run
from havatar_testing.streaming import USERS

LATCHED = QoSProfile(depth=5, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


def test_mediamtx_killed_while_driving(cloud_robot, sources, streaming_node, mediamtx_factory,
                                       ros_node):
    server = mediamtx_factory(users=USERS)
    sources()
    streaming_node(server, mode='server', retry_min=0.5, retry_max=1.0)
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.active_mode == 'server', timeout=30, what='server mode active')
    rig = cloud_robot(relays=('a',), robot_on='a')

    async def scenario() -> tuple[float, float]:
        alice = await rig.user('a')
        moving = await rig.hold_forward(alice)
        server.process.signal(signal.SIGKILL)
        await asyncio.to_thread(status.wait_for, lambda m: m.fallback_active, 10, 'the fallback')
        await asyncio.sleep(1.0)
        assert not rig.stopped_since(moving), 'losing the media server stopped a live driver'
        sent = time.time()
        await alice.send({'type': 'stop'})
        stop = await asyncio.to_thread(rig.stop_after, sent)
        server.start()  # same ports
        restarted = time.monotonic()
        status.clear()
        await asyncio.to_thread(status.wait_for, lambda m: m.active_mode == 'server' and
                                not m.fallback_active, 30, 'server mode back')
        recovery = time.monotonic() - restarted
        await rig.close_users()
        return stop, recovery
    stop, recovery = run(scenario())
    report('MediaMTX killed while driving, restarted', stop, recovery,
           '(stop: a stop sent during the outage; recovery: server mode back after the restart)')
    assert stop < 1.0, stop  # not held up by the outage (a held stop took seconds); ~0.05 s when quiet
    assert recovery < 10.0
