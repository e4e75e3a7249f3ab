"""ROS 2 robot relay node (executable ``relay_node``): browsers drive the robot through it.

Local mode (always on): the robot serves the web UI, the relay protocol at ``/ws`` and
the original robot's HTTP API on ``http_port``. Server mode (``relay_url`` set): it is
also a WebSocket client of the cloud relay. Either way, commands become ``cmd_vel``
(``geometry_msgs/Twist``) — stale ones are dropped — text becomes ``say``, mode changes go
to the streaming node's ``stream/set_mode``, and robot status goes back to the users.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import String

from havatar_common.parameters import ParameterTable, declare_parameters
from havatar_common.qos import LATCHED
from havatar_common.secrets import resolve_token, secret
from havatar_common.spin import spin_node
from havatar_msgs.msg import StreamStatus

from . import protocol as p
from .brokers import MemoryBroker
from .cloud_client import Backoff, CloudClient
from .command_gate import STOPPED, CommandGate
from .command_router import CommandRouter
from .local_server import LocalServer
from .accounts import Accounts
from .relay_core import RelayCore
from .robot_api import RobotHttpApi, SettingsStore
from .streaming_control import RosStreamingControl

CONFIG_DIR = Path(os.environ.get('XDG_CONFIG_HOME', Path.home() / '.config')) / 'havatar'

PARAMETERS: ParameterTable = [
    ('robot_id', 'robot', "This robot's id (its path on MediaMTX, its name on the relay)", None),
    ('http_host', '0.0.0.0', 'Address of the local web UI / API server', None),
    ('http_port', 8080, 'Port of the local web UI / API server', (1, 65535)),
    ('access_token', '', 'Token local users need; default from HAVATAR_ACCESS_TOKEN; if both '
     'are empty one is generated and written to access_token_file', None),
    ('access_token_file', '', "Where a generated token is kept; '' = "
     '~/.config/havatar/access_token', None),
    ('relay_url', '', "Cloud relay WebSocket (wss://relay.example.org/ws); '' = local only", None),
    ('robot_token', '', "The robot's relay token; default from HAVATAR_ROBOT_TOKEN", None),
    ('reconnect_max', 30.0, 'Longest wait (s) between two attempts to reach the cloud relay; '
     'the wait doubles from 0.5 s after each failure', (1.0, 300.0)),
    ('max_command_age', 0.3, 'Drive commands older than this (s) are dropped', (0.02, 5.0)),
    ('max_linear', 0.5, 'Largest linear speed a browser may ask for (m/s)', (0.0, 10.0)),
    ('max_angular', 2.5, 'Largest turn rate a browser may ask for (rad/s)', (0.0, 20.0)),
    ('motor_control_hold', 10.0, 'Seconds a direction command of the original UI is held '
     'without a stop', (0.1, 120.0)),
    ('driver_lease', 0.6, 'Seconds a held command goes on without word that its driver is '
     'live (the relay sends a lease five times a second)', (0.2, 5.0)),
    ('settings_file', '', 'Where /server/config persists the server-mode settings (the '
     "original avatar_tank_config.json format); '' = ~/.config/havatar/server_mode.json", None),
    ('streaming_node', 'streaming_node', 'Name of the streaming node whose parameters '
     '/server/config sets', None),
    ('mjpeg_port', 8081, "Port of the streaming node's MJPEG server, for the UI", (1, 65535)),
    ('whep_base_url', '', "Base URL of MediaMTX's WebRTC server as browsers reach it "
     "(https://media.example.org/); '' = no WebRTC video", None),
    ('status_period', 2.0, 'Seconds between status messages to the users', (0.2, 60.0)),
]


class RelayNode(Node):
    """Wires topics, services and the cloud link to the command router, the relay core and
    the local server; owns only the robot's status as the topics report it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('relay_node', **kwargs)
        prm = declare_parameters(self, PARAMETERS)
        self.params = prm
        self.robot_id = prm['robot_id']
        p.Hello(role=p.Role.ROBOT, token='x', robot_id=self.robot_id)  # validates the id
        token_file = Path(prm['access_token_file'] or CONFIG_DIR / 'access_token').expanduser()
        self.token = resolve_token(prm['access_token'], 'HAVATAR_ACCESS_TOKEN', token_file)
        self._state: dict[str, Any] = {'battery': p.Battery(), 'stream': p.StreamState(),
                                       'serial': 'unknown'}
        self._state_lock = threading.Lock()

        self.cmd_pub = self.create_publisher(Twist, 'cmd_vel', 10)
        self.say_pub = self.create_publisher(String, 'say', 10)
        self.create_subscription(BatteryState, 'battery', self._on_battery, LATCHED)
        self.create_subscription(StreamStatus, 'stream/status', self._on_stream, LATCHED)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        streaming = RosStreamingControl(self, prm['streaming_node'])
        gate = CommandGate(prm['max_linear'], prm['max_angular'], prm['max_command_age'] * 1000,
                           prm['motor_control_hold'], prm['driver_lease'])
        self.router = CommandRouter(gate, self._publish, self._reply,
                                    lambda text: self.say_pub.publish(String(data=text)),
                                    streaming.set_mode, self.status)
        settings = SettingsStore(Path(prm['settings_file'] or CONFIG_DIR / 'server_mode.json').expanduser())
        api = RobotHttpApi(settings, streaming, self.status, self._relay_connected)

        self.core = RelayCore(MemoryBroker(), Accounts(users={'local': (self.token, [self.robot_id])}),
                              instance='robot')
        self.cloud: Optional[CloudClient] = None
        self.server = LocalServer(self.core, api, prm['http_host'], prm['http_port'], self.token)
        self.server.start(self._on_loop)
        self.create_timer(prm['status_period'], lambda: self.server.call(self.router.send_status()))
        robot_token = secret(prm['robot_token'], 'HAVATAR_ROBOT_TOKEN')
        if prm['relay_url']:
            if not robot_token:
                raise ValueError('parameter robot_token (or HAVATAR_ROBOT_TOKEN) is needed with relay_url')
            self.cloud = CloudClient(prm['relay_url'], self.robot_id, robot_token,
                                     self.router.route, self._on_cloud_link,
                                     Backoff(longest=prm['reconnect_max']), self.get_logger())
            self.server.call(self.cloud.run())
        self.get_logger().info(
            f"web UI on http://{prm['http_host']}:{prm['http_port']}/ for robot {self.robot_id}"
            + (f"; cloud relay {prm['relay_url']}" if prm['relay_url'] else '')
            + ('' if secret(prm['access_token'], 'HAVATAR_ACCESS_TOKEN')
               else f'; access token in {token_file}'))

    # -- on the server's event loop: it owns the router (and its command gate)
    async def _on_loop(self) -> None:
        await self.core.attach_local_robot(self.robot_id, self.router.route)
        self.router.start()

    def _on_cloud_link(self, up: bool) -> None:
        if not up:  # the relay (and with it the driver) is gone: stop now
            self.router.stop()
            self.get_logger().warning('cloud relay connection lost: motors stopped')

    def _publish(self, twist: tuple[float, float]) -> None:
        msg = Twist()
        msg.linear.x, msg.angular.z = twist
        self.cmd_pub.publish(msg)

    async def _reply(self, message: p.Message) -> None:
        await self.core.from_robot(self.robot_id, message, to_session=message.id)
        if self.cloud is not None:
            await self.cloud.send(message)

    def _relay_connected(self) -> bool:
        return bool(self.cloud and self.cloud.connected)

    # -- status (ROS callbacks on the executor's thread; read on the server's loop)
    def _on_battery(self, msg: BatteryState) -> None:
        with self._state_lock:
            self._state['battery'] = p.Battery(voltage=round(msg.voltage, 3),
                                               percentage=round(msg.percentage, 3), present=msg.present)

    def _on_stream(self, msg: StreamStatus) -> None:
        with self._state_lock:
            self._state['stream'] = p.StreamState(
                requested=msg.requested_mode or 'local', active=msg.active_mode or 'local',
                fallback=msg.fallback_active, server_reachable=msg.server_reachable,
                fps=round(msg.fps, 1), bitrate_kbps=round(msg.bitrate_kbps, 1),
                last_error=msg.last_error[:300])

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith('ESP32 link'):
                with self._state_lock:
                    self._state['serial'] = status.message[:100]

    def status(self) -> p.Status:
        with self._state_lock:
            state = dict(self._state)
        base = self.params['whep_base_url'].rstrip('/')
        clock = self.cloud.clock if self.cloud else None
        return p.Status(
            robot_id=self.robot_id, battery=state['battery'], stream=state['stream'],
            link=p.LinkState(relay_rtt_ms=clock.rtt_ms if clock else None,
                             clock_offset_ms=clock.offset_ms if clock and clock.known else None,
                             serial=state['serial'], dropped_stale=self.router.gate.dropped_stale),
            mjpeg_url=f":{self.params['mjpeg_port']}/stream.mjpg",
            whep_url=f'{base}/{self.robot_id}/whep' if base else None,
            whip_url=f'{base}/{self.robot_id}/talk/whip' if base else None, ts=p.now_ms())

    def shutdown(self) -> None:
        self.server.stop()
        if self.context.ok():  # after Ctrl-C rclpy has already shut the context down
            self._publish(STOPPED)


def main(args: Optional[list[str]] = None) -> None:
    spin_node(RelayNode, 'relay_node', args)


if __name__ == '__main__':
    main()
