"""ROS 2 robot relay node (executable ``relay_node``): browsers drive the robot through it.

Local mode (always on): the robot serves the web UI, the relay protocol at ``/ws`` and
the original robot's HTTP API on ``http_port``. Server mode (``relay_url`` set): it is
also a WebSocket client of the cloud relay. Either way, commands become ``cmd_vel``
(``geometry_msgs/Twist``) — stale ones are dropped — text becomes ``say``, mode changes go
to the streaming node's ``stream/set_mode``, and robot status goes back to the users.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Optional

import psutil
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import String

from havatar_common.qos import LATCHED
from havatar_common.secrets import resolve_token, secret, write_private
from havatar_common.parameters import ParameterTable, declare_parameters
from havatar_common.spin import spin_node
from havatar_msgs.msg import StreamStatus
from havatar_msgs.srv import SetStreamMode
from havatar_streaming.server_config import ServerModeConfig

from . import protocol as p
from .brokers import MemoryBroker
from .cloud_client import Backoff, CloudClient
from .command_gate import STOPPED, CommandGate
from .local_server import LocalServer
from .relay_core import Accounts, RelayCore

CONFIG_DIR = Path(os.environ.get('XDG_CONFIG_HOME', Path.home() / '.config')) / 'havatar'

PARAMETERS: ParameterTable = [
    ('robot_id', 'robot', 'This robot\'s id (its path on MediaMTX, its name on the relay)', None),
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
    ('motor_control_hold', 10.0, "Seconds a direction command of the original UI is held "
     'without a stop', (0.1, 120.0)),
    ('driver_lease', 0.6, 'Seconds a held command goes on without word that its driver is '
     'live (the relay sends a lease five times a second)', (0.2, 5.0)),
    ('settings_file', '', 'Where /server/config persists the server-mode settings (the '
     "original avatar_tank_config.json format); '' = ~/.config/havatar/server_mode.json", None),
    ('streaming_node', 'streaming_node', 'Name of the streaming node whose parameters '
     '/server/config sets', None),
    ('mjpeg_port', 8081, 'Port of the streaming node\'s MJPEG server, for the UI', (1, 65535)),
    ('whep_base_url', '', "Base URL of MediaMTX's WebRTC server as browsers reach it "
     "(https://media.example.org/); '' = no WebRTC video", None),
    ('status_period', 2.0, 'Seconds between status messages to the users', (0.2, 60.0)),
]

HOLD_PERIOD_S = 0.1


class RelayNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('relay_node', **kwargs)
        prm = declare_parameters(self, PARAMETERS)
        self.params = prm
        self.robot_id = prm['robot_id']
        p.Hello(role=p.Role.ROBOT, token='x', robot_id=self.robot_id)  # validates the id
        token_file = Path(prm['access_token_file'] or CONFIG_DIR / 'access_token').expanduser()
        self.token = resolve_token(prm['access_token'], 'HAVATAR_ACCESS_TOKEN', token_file)
        self.settings_file = Path(prm['settings_file'] or CONFIG_DIR / 'server_mode.json').expanduser()
        self.gate = CommandGate(prm['max_linear'], prm['max_angular'], prm['max_command_age'] * 1000,
                                prm['motor_control_hold'], prm['driver_lease'])
        self._state: dict[str, Any] = {'battery': p.Battery(), 'stream': p.StreamState(),
                                       'serial': 'unknown'}
        self._state_lock = threading.Lock()

        self.cmd_pub = self.create_publisher(Twist, 'cmd_vel', 10)
        self.say_pub = self.create_publisher(String, 'say', 10)
        self.create_subscription(BatteryState, 'battery', self._on_battery, LATCHED)
        self.create_subscription(StreamStatus, 'stream/status', self._on_stream, LATCHED)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.mode_client = self.create_client(SetStreamMode, 'stream/set_mode')
        self.params_client = self.create_client(
            SetParameters, f"{prm['streaming_node']}/set_parameters")
        self.create_timer(prm['status_period'], lambda: self.server.call(self._send_status()))
        self._tasks: set[asyncio.Future[None]] = set()

        self.core = RelayCore(MemoryBroker(), Accounts(users={'local': (self.token, [self.robot_id])}),
                              instance='robot')
        self.server = LocalServer(self.core, self, prm['http_host'], prm['http_port'], self.token)
        self.server.start(self._on_loop)
        self.cloud: Optional[CloudClient] = None
        robot_token = secret(prm['robot_token'], 'HAVATAR_ROBOT_TOKEN')
        if prm['relay_url']:
            if not robot_token:
                raise ValueError('parameter robot_token (or HAVATAR_ROBOT_TOKEN) is needed with relay_url')
            self.cloud = CloudClient(prm['relay_url'], self.robot_id, robot_token,
                                     self._on_command, self._on_cloud_link,
                                     Backoff(longest=prm['reconnect_max']), self.get_logger())
            self.server.call(self.cloud.run())
        self.get_logger().info(
            f"web UI on http://{prm['http_host']}:{prm['http_port']}/ for robot {self.robot_id}"
            + (f"; cloud relay {prm['relay_url']}" if prm['relay_url'] else '')
            + ('' if secret(prm['access_token'], 'HAVATAR_ACCESS_TOKEN')
               else f'; access token in {token_file}'))

    # -- commands: the gate belongs to the server's event loop; nothing else touches it
    async def _on_command(self, message: p.Message) -> None:
        """Every message for the robot, local or from the cloud; never waits for slow work."""
        if isinstance(message, p.Drive):
            twist, ack = self.gate.drive(message, p.now_ms())
            if twist is not None:
                self._publish(twist)
            await self._reply(ack)
        elif isinstance(message, p.MotorControl):
            twist, ack = self.gate.motor_control(message, p.now_ms(), time.monotonic())
            if twist is not None:
                self._publish(twist)
            await self._reply(ack)
        elif isinstance(message, p.Stop):
            self._publish(self.gate.stop())
        elif isinstance(message, p.Lease):
            self.gate.lease(message, time.monotonic())
        elif isinstance(message, p.Say):
            self.say_pub.publish(String(data=message.text))
        elif isinstance(message, p.SetMode):
            self._background(self._switch_mode(message))  # a service call: beside the driving
        elif isinstance(message, p.GetStatus):
            await self._send_status()

    def _background(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _switch_mode(self, message: p.SetMode) -> None:
        ok, text = await self._set_mode(message.mode)
        if not ok:
            await self._reply(p.Error(code=p.ErrorCode.INTERNAL, message=text[:500], id=message.id))
        await self._send_status()

    def _on_cloud_link(self, up: bool) -> None:
        if not up:  # the relay (and with it the driver) is gone: stop now
            self._publish(self.gate.stop())
            self.get_logger().warning('cloud relay connection lost: motors stopped')

    def _publish(self, twist: tuple[float, float]) -> None:
        msg = Twist()
        msg.linear.x, msg.angular.z = twist
        self.cmd_pub.publish(msg)

    async def _repeat_held(self) -> None:
        while True:
            await asyncio.sleep(HOLD_PERIOD_S)
            twist = self.gate.hold(time.monotonic())
            if twist is not None:
                self._publish(twist)

    async def _on_loop(self) -> None:
        await self.core.attach_local_robot(self.robot_id, self._on_command)
        self._background(self._repeat_held())

    async def _reply(self, message: p.Message) -> None:
        target = message.id
        await self.core.from_robot(self.robot_id, message, to_session=target)
        if self.cloud is not None:
            await self.cloud.send(message)

    # -- status
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
        return p.Status(
            robot_id=self.robot_id, battery=state['battery'], stream=state['stream'],
            link=p.LinkState(relay_rtt_ms=self.cloud.clock.rtt_ms if self.cloud else None,
                             clock_offset_ms=self.cloud.clock.offset_ms if self.cloud and self.cloud.clock.known else None,
                             serial=state['serial'], dropped_stale=self.gate.dropped_stale),
            mjpeg_url=f":{self.params['mjpeg_port']}/stream.mjpg",
            whep_url=f'{base}/{self.robot_id}/whep' if base else None,
            whip_url=f'{base}/{self.robot_id}/talk/whip' if base else None, ts=p.now_ms())

    async def _send_status(self) -> None:
        await self._reply(self.status())

    # -- the original HTTP API (RobotApi, on the server's event loop)
    async def _call(self, client: Any, request: Any, timeout: float = 5.0) -> Any:
        if not client.service_is_ready():
            raise RuntimeError(f'{client.srv_name} is not available')
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise RuntimeError(f'{client.srv_name} did not answer')
            await asyncio.sleep(0.01)
        return future.result()

    async def _set_mode(self, mode: str) -> tuple[bool, str]:
        try:
            response = await self._call(self.mode_client, SetStreamMode.Request(mode=mode))
        except RuntimeError as exc:
            return False, str(exc)
        return response.success, response.message

    async def server_status(self) -> dict[str, Any]:
        stream = self.status().stream
        config = self.server_config()
        return {'enabled': stream.requested == 'server', 'active_mode': stream.active,
                'requested_mode': stream.requested, 'fallback': stream.fallback,
                'server_reachable': stream.server_reachable, 'last_error': stream.last_error,
                'server_url': config['server_url'], 'stream_key': config['stream_key'],
                'relay_connected': bool(self.cloud and self.cloud.connected)}

    async def set_server_mode(self, enabled: bool) -> dict[str, Any]:
        ok, message = await self._set_mode('server' if enabled else 'local')
        return {'success': ok, 'message': message, **(await self.server_status())}

    def _load_settings(self) -> ServerModeConfig:
        try:
            return ServerModeConfig.from_legacy(json.loads(self.settings_file.read_text()))
        except (OSError, ValueError):
            return ServerModeConfig()

    def server_config(self) -> dict[str, Any]:
        config = self._load_settings()
        return {'enabled': config.enabled, 'server_url': config.server_url,
                'stream_key': config.stream_key, 'fallback_to_local': config.fallback_to_local,
                'stream_password_set': bool(config.stream_password)}

    async def save_server_config(self, body: dict[str, Any]) -> dict[str, Any]:
        current = self._load_settings()
        merged = {'enabled': current.enabled, 'server_url': current.server_url,
                  'stream_key': current.stream_key, 'stream_password': current.stream_password,
                  'fallback_to_local': current.fallback_to_local}
        merged.update({k: v for k, v in body.items() if k != 'stream_password_set'})
        config = ServerModeConfig.from_legacy({'server_mode': merged})  # raises ValueError
        write_private(self.settings_file, json.dumps({'server_mode': merged}, indent=2) + '\n')
        applied, message = await self._apply_settings(config)
        return {'success': True, 'applied': applied, 'message': message, **self.server_config()}

    async def _apply_settings(self, config: ServerModeConfig) -> tuple[bool, str]:
        def param(name: str, value: Any) -> ParameterMsg:
            if isinstance(value, bool):
                v = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
            else:
                v = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(value))
            return ParameterMsg(name=name, value=v)
        values = [param('server_url', config.server_url), param('stream_key', config.stream_key)]
        if config.stream_password:
            values.append(param('stream_password', config.stream_password))
        try:
            result = await self._call(self.params_client, SetParameters.Request(parameters=values))
            if not all(r.successful for r in result.results):
                return False, '; '.join(r.reason for r in result.results if not r.successful)
            ok, message = await self._set_mode('server' if config.enabled else 'local')
            return ok, message
        except RuntimeError as exc:
            return False, f'saved; the streaming node did not take it: {exc}'

    def system_status(self) -> dict[str, Any]:
        temperature = None
        try:
            temps = psutil.sensors_temperatures()
            for entries in temps.values():
                if entries:
                    temperature = entries[0].current
                    break
        except (AttributeError, OSError):
            pass
        status = self.status()
        return {'cpu_percent': psutil.cpu_percent(interval=None),
                'memory_percent': psutil.virtual_memory().percent,
                'temperature_c': temperature, 'uptime_s': round(time.time() - psutil.boot_time()),
                'battery': status.battery.model_dump(), 'stream': status.stream.model_dump(),
                'serial': status.link.serial, 'relay_connected': bool(self.cloud and self.cloud.connected)}

    def shutdown(self) -> None:
        self.server.stop()
        if self.context.ok():  # after Ctrl-C rclpy has already shut the context down
            self._publish(STOPPED)


def main(args: Optional[list[str]] = None) -> None:
    spin_node(RelayNode, 'relay_node', args)


if __name__ == '__main__':
    main()
