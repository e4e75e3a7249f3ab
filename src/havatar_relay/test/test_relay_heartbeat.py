"""The relay node's heartbeat on /diagnostics (what run_robot's watchdog watches): sent while
both the ROS executor and the web server's event loop run, withheld while the loop hangs.
"""
from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter

from havatar_relay.relay_node import LOOP_LATE_PERIODS, RelayNode
from havatar_testing import free_port, wait_until

PERIOD_S = 0.2


def heartbeats(log) -> list[tuple[float, DiagnosticStatus]]:
    return [(t, s) for t, m in log.timed for s in m.status if s.name == 'relay_node: relay']


def test_the_heartbeat_stops_while_the_web_servers_loop_hangs_and_comes_back(ros_node, tmp_path):
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    port = free_port()
    relay = RelayNode(context=ros_node.context, parameter_overrides=[
        Parameter('http_host', value='127.0.0.1'), Parameter('http_port', value=port),
        Parameter('access_token', value='test-token'), Parameter('diagnostics_period', value=PERIOD_S),
        Parameter('settings_file', value=str(tmp_path / 'server_mode.json'))])
    ros_node.executor.add_node(relay)
    release = threading.Event()
    try:
        wait_until(lambda: heartbeats(diagnostics), 15, 'a relay_node heartbeat')
        _, status = heartbeats(diagnostics)[-1]
        assert status.level == DiagnosticStatus.OK and status.message == f'serving on port {port}'
        assert {kv.key: kv.value for kv in status.values}['cloud_relay'] == 'off'

        async def hang() -> None:  # a handler that blocks the event loop
            release.wait(30)
        relay.server.call(hang())
        hung = time.monotonic()
        silent_for = 5 * PERIOD_S  # well past LOOP_LATE_PERIODS periods without the loop
        assert silent_for > LOOP_LATE_PERIODS * PERIOD_S
        wait_until(lambda: time.monotonic() - max(t for t, _ in heartbeats(diagnostics)) > silent_for, 10,
                   'the heartbeats to stop')
        late = [t for t, _ in heartbeats(diagnostics) if t > hung]
        assert all(t - hung < (LOOP_LATE_PERIODS + 1.5) * PERIOD_S for t in late), late
        release.set()
        back = time.monotonic()
        wait_until(lambda: any(t > back for t, _ in heartbeats(diagnostics)), 10, 'the heartbeat back')
    finally:
        release.set()
        ros_node.executor.remove_node(relay)
        relay.shutdown()
        relay.destroy_node()
