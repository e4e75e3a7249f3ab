"""The original robot's HTTP API (``doc/ROBOT_HTTP_API.md``) and its settings file (no ROS).

``RobotHttpApi`` is what ``LocalServer`` serves as its ``RobotApi``: the streaming state,
server mode on and off, the saved server-mode settings, a connection test, and the robot's
health. The answers keep the Flask robot's shapes (``{ok, msg}``, ``{ok, status: {...}}``,
the ``/system_status`` blocks) with this version's fields beside them. The node passes in
what it knows (the robot's ``status``, whether the cloud relay is connected) and how to
reach the streaming node (``StreamingControl``); every method runs on the local server's
event loop.

Saved settings take effect at once: the streaming node checks them (its parameters are set
atomically, or not at all, with its reason) before they are written, and reads the file
back when it starts. Only when the streaming node cannot be reached are they saved
unchecked; it then checks them at its start and, if it cannot use them, says so and keeps
its own.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import psutil

from havatar_common.secrets import write_private
from havatar_streaming.server_probe import ProbeSettings, probe
from havatar_streaming.server_settings import ServerModeConfig, read_settings_file

from . import protocol as p

# the streaming node's own parameters that decide how it reaches the server
CONNECTION_PARAMETERS = ('allow_unencrypted', 'api_url', 'server_ca_file', 'stream_user')
STREAM_PASSWORD_ENV = 'HAVATAR_STREAM_PASSWORD'


class SettingsRefused(ValueError):
    """The streaming node refused the settings: nothing was saved."""


class StreamingControl(Protocol):
    """The streaming node, as the API drives it."""

    async def set_mode(self, mode: str) -> tuple[bool, str]:
        """Switch to ``mode``: (done, message); never raises."""
        ...

    async def set_parameters(self, values: dict[str, str | bool]) -> list[tuple[bool, str]]:
        """Set its parameters: (successful, reason) each; RuntimeError when it cannot be reached."""
        ...

    async def get_parameters(self, names: tuple[str, ...]) -> dict[str, Any]:
        """Its parameters' values; RuntimeError when it cannot be reached."""
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
            return read_settings_file(self.path) or ServerModeConfig()
        except ValueError:
            return ServerModeConfig()

    def merge(self, changes: dict[str, Any]) -> ServerModeConfig:
        """The saved settings with ``changes`` (an https:// server URL mapped); ValueError
        when the result is not valid. An empty or missing password keeps the saved one.
        """
        merged = self.load().to_legacy()['server_mode']
        merged.update({k: v for k, v in changes.items()
                       if k != 'stream_password_set' and not (k == 'stream_password' and not v)})
        return ServerModeConfig.from_legacy({'server_mode': merged})  # raises ValueError

    def save(self, config: ServerModeConfig) -> None:
        write_private(self.path, json.dumps(config.to_legacy(), indent=2) + '\n')


class RobotHttpApi:
    """The endpoints' answers (``local_server.RobotApi``)."""

    def __init__(self, settings: SettingsStore, streaming: StreamingControl,
                 status: Callable[[], p.Status], relay_connected: Callable[[], bool],
                 server_url_in_use: Callable[[], str] = lambda: '') -> None:
        """``server_url_in_use``: the server the streaming node targets ('' before it says),
        which its launch parameters set when nothing was saved here.
        """
        self.settings = settings
        self.streaming = streaming
        self.status = status
        self.relay_connected = relay_connected
        self.server_url_in_use = server_url_in_use

    def _server_url(self) -> str:
        return self.server_url_in_use() or self.settings.load().server_url

    def _original_status(self) -> dict[str, Any]:
        """The Flask robot's ``get_status()`` block, from the streaming node's state."""
        stream = self.status().stream
        publishing = stream.active == 'server'
        return {'server_mode_enabled': publishing, 'connected_to_server': publishing,
                'video_streaming': publishing, 'audio_streaming': publishing,
                'server_url': self._server_url()}

    async def server_status(self) -> dict[str, Any]:
        stream = self.status().stream
        config = self.server_config()
        return {'ok': True, 'status': {**self._original_status(), 'stream_key': config['stream_key'],
                                       'requested_mode': stream.requested, 'fallback': stream.fallback,
                                       'last_error': stream.last_error},
                'enabled': stream.requested == 'server', 'active_mode': stream.active,
                'requested_mode': stream.requested, 'fallback': stream.fallback,
                'server_reachable': stream.server_reachable, 'last_error': stream.last_error,
                'server_url': self._server_url(), 'stream_key': config['stream_key'],
                'relay_connected': self.relay_connected()}

    async def set_server_mode(self, enabled: bool) -> dict[str, Any]:
        ok, message = await self.streaming.set_mode('server' if enabled else 'local')
        status = await self.server_status()
        return {**status, 'ok': ok, 'msg': message, 'success': ok, 'message': message}

    def server_config(self) -> dict[str, Any]:
        config = self.settings.load()
        return {'enabled': config.enabled, 'server_url': config.server_url,
                'stream_key': config.stream_key, 'fallback_to_local': config.fallback_to_local,
                'stream_password_set': bool(config.stream_password)}

    async def save_server_config(self, body: dict[str, Any]) -> dict[str, Any]:
        """Check ``body`` merged into the saved settings, have the streaming node take them
        (its mode with them, in one step), then save them. ValueError (nothing saved, nothing changed) when
        they are invalid or the streaming node refuses them (``SettingsRefused``).
        """
        config = self.settings.merge(body)  # raises ValueError
        values = config.applied_parameters()  # the mode too, in the same step
        try:
            results = await self.streaming.set_parameters(values)
        except RuntimeError as exc:
            self.settings.save(config)
            message = (f'saved, not applied: the streaming node cannot be reached ({exc}); '
                       'it checks and takes them when it starts')
            return self._saved(False, message)
        refused = [reason for ok, reason in results if not ok]
        if refused:
            raise SettingsRefused('; '.join(refused))
        self.settings.save(config)
        return self._saved(True, 'server mode requested: /server/status tells when it is active'
                           if config.enabled else 'local mode')

    def _saved(self, applied: bool, message: str) -> dict[str, Any]:
        return {'ok': True, 'msg': 'Server configuration updated', 'success': True,
                'applied': applied, 'message': message, **self.server_config()}

    async def test_connection(self, body: dict[str, Any]) -> dict[str, Any]:
        """Reach the server with ``body`` (the settings form, unsaved) as the streaming node
        would: ``{ok, msg, error, server_url, steps}``.
        """
        saved = self.settings.load()
        try:
            node = await self.streaming.get_parameters(CONNECTION_PARAMETERS)
        except RuntimeError:
            node = {}  # not running: its defaults
        password = (str(body.get('stream_password') or '') or saved.stream_password
                    or os.environ.get(STREAM_PASSWORD_ENV, ''))
        settings = ProbeSettings(
            server_url=str(body.get('server_url', saved.server_url) or ''),
            stream_key=str(body.get('stream_key', saved.stream_key) or ''), password=password,
            user=str(node.get('stream_user') or ''),
            allow_unencrypted=bool(node.get('allow_unencrypted', False)),
            api_url=str(node.get('api_url') or ''), ca_file=str(node.get('server_ca_file') or ''))
        return (await probe(settings)).as_dict()

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
        stream, battery = status.stream, status.battery
        percentage = None if battery.percentage is None else round(battery.percentage * 100, 1)
        return {
            # the Flask robot's blocks (app_state is added by the server)
            'camera': {'mode': stream.active, 'fps': stream.fps},
            'motors': {'serial': status.link.serial},
            'tts': {'topic': 'say'},
            'audio': {'mic': 'audio/mic', 'speaker': 'audio/speaker'},
            'battery': {'voltage': battery.voltage, 'percentage': percentage, 'present': battery.present},
            'server': {'available': True, **self._original_status()},
            # this version's
            'cpu_percent': psutil.cpu_percent(interval=None),
            'memory_percent': psutil.virtual_memory().percent,
            'temperature_c': temperature, 'uptime_s': round(time.time() - psutil.boot_time()),
            'stream': stream.model_dump(), 'serial': status.link.serial,
            'relay_connected': self.relay_connected()}
