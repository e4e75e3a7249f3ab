"""The original robot's HTTP API (``doc/ROBOT_HTTP_API.md``) and its settings file (no ROS).

``RobotHttpApi`` is what ``LocalServer`` serves as its ``RobotApi``: the streaming state,
server mode on and off, the saved server-mode settings, and the robot's health. The node
passes in what it knows (the robot's ``status``, whether the cloud relay is connected) and
how to reach the streaming node (``StreamingControl``); every method runs on the local
server's event loop.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import psutil

from havatar_common.secrets import write_private
from havatar_streaming.server_settings import ServerModeConfig

from . import protocol as p


class StreamingControl(Protocol):
    """The streaming node, as the API drives it."""

    async def set_mode(self, mode: str) -> tuple[bool, str]:
        """Switch to ``mode``: (done, message); never raises."""
        ...

    async def set_parameters(self, values: dict[str, str | bool]) -> list[tuple[bool, str]]:
        """Set its parameters: (successful, reason) each; RuntimeError when it cannot be reached."""
        ...


class SettingsStore:
    """The server-mode settings file: the original ``avatar_tank_config.json`` format,
    ``{"server_mode": {...}}``, written atomically and readable by its owner only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> ServerModeConfig:
        """The saved settings; the defaults when there are none (or they cannot be read)."""
        try:
            return ServerModeConfig.from_legacy(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return ServerModeConfig()

    def update(self, changes: dict[str, Any]) -> ServerModeConfig:
        """Merge ``changes`` into the saved settings and save them; ValueError (nothing saved)
        when the result is not valid.
        """
        current = self.load()
        merged = {'enabled': current.enabled, 'server_url': current.server_url,
                  'stream_key': current.stream_key, 'stream_password': current.stream_password,
                  'fallback_to_local': current.fallback_to_local}
        merged.update({k: v for k, v in changes.items() if k != 'stream_password_set'})
        config = ServerModeConfig.from_legacy({'server_mode': merged})  # raises ValueError
        write_private(self.path, json.dumps({'server_mode': merged}, indent=2) + '\n')
        return config


class RobotHttpApi:
    """The endpoints' answers (``local_server.RobotApi``)."""

    def __init__(self, settings: SettingsStore, streaming: StreamingControl,
                 status: Callable[[], p.Status], relay_connected: Callable[[], bool]) -> None:
        self.settings = settings
        self.streaming = streaming
        self.status = status
        self.relay_connected = relay_connected

    async def server_status(self) -> dict[str, Any]:
        stream = self.status().stream
        config = self.server_config()
        return {'enabled': stream.requested == 'server', 'active_mode': stream.active,
                'requested_mode': stream.requested, 'fallback': stream.fallback,
                'server_reachable': stream.server_reachable, 'last_error': stream.last_error,
                'server_url': config['server_url'], 'stream_key': config['stream_key'],
                'relay_connected': self.relay_connected()}

    async def set_server_mode(self, enabled: bool) -> dict[str, Any]:
        ok, message = await self.streaming.set_mode('server' if enabled else 'local')
        return {'success': ok, 'message': message, **(await self.server_status())}

    def server_config(self) -> dict[str, Any]:
        config = self.settings.load()
        return {'enabled': config.enabled, 'server_url': config.server_url,
                'stream_key': config.stream_key, 'fallback_to_local': config.fallback_to_local,
                'stream_password_set': bool(config.stream_password)}

    async def save_server_config(self, body: dict[str, Any]) -> dict[str, Any]:
        config = self.settings.update(body)  # raises ValueError
        applied, message = await self._apply(config)
        return {'success': True, 'applied': applied, 'message': message, **self.server_config()}

    async def _apply(self, config: ServerModeConfig) -> tuple[bool, str]:
        """Hand saved settings to the streaming node: its parameters, then its mode."""
        values: dict[str, str | bool] = {'server_url': config.server_url,
                                         'stream_key': config.stream_key}
        if config.stream_password:
            values['stream_password'] = config.stream_password
        try:
            results = await self.streaming.set_parameters(values)
        except RuntimeError as exc:
            return False, f'saved; the streaming node did not take it: {exc}'
        if not all(ok for ok, _ in results):
            return False, '; '.join(reason for ok, reason in results if not ok)
        return await self.streaming.set_mode('server' if config.enabled else 'local')

    def system_status(self) -> dict[str, Any]:
        temperature = None
        try:
            for entries in psutil.sensors_temperatures().values():
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
                'serial': status.link.serial, 'relay_connected': self.relay_connected()}
