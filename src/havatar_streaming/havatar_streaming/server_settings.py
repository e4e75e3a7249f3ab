"""The robot's server-mode settings (``ServerModeConfig``), pure and ROS-free.

One model for every place that holds them: the relay node's ``/server/config`` store (the
Flask robot's ``avatar_tank_config.json`` shape, kept as is), the streaming node, which
reads that file back at start-up (``read_settings_file``), and ``convert_server_config``,
which turns an old file into ``streaming_node`` parameters. A server URL in the Flask
UI's ``https://host`` form is mapped to ``rtsps://host:8322`` (``server_url.map_server_url``)::

    {"server_mode": {"enabled": true, "server_url": "rtsp://example.org:8554",
                     "stream_key": "robot1", "stream_password": "...",
                     "fallback_to_local": true}}
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .server_url import map_server_url

KEYS = ('enabled', 'server_url', 'stream_key', 'stream_password', 'fallback_to_local')


@dataclass(frozen=True)
class ServerModeConfig:
    enabled: bool = False
    server_url: str = ''
    stream_key: str = ''
    stream_password: str = ''
    fallback_to_local: bool = True

    @classmethod
    def from_legacy(cls, data: dict[str, Any]) -> 'ServerModeConfig':
        """Read the ``server_mode`` block (or a file's top level holding it)."""
        block = data.get('server_mode', data)
        if not isinstance(block, dict):
            raise ValueError('server_mode must be an object')
        unknown = set(block) - set(KEYS)
        if unknown:
            raise ValueError(f'unknown server_mode keys: {", ".join(sorted(unknown))}')
        config = cls(enabled=bool(block.get('enabled', False)),
                     server_url=map_server_url(str(block.get('server_url', ''))),
                     stream_key=str(block.get('stream_key', '')),
                     stream_password=str(block.get('stream_password', '')),
                     fallback_to_local=bool(block.get('fallback_to_local', True)))
        if config.enabled and not (config.server_url and config.stream_key):
            raise ValueError('server_mode enabled without server_url and stream_key')
        if config.stream_key and not config.stream_key.strip('/ '):
            raise ValueError('stream_key must not be empty')
        return config

    def to_legacy(self) -> dict[str, Any]:
        """The file's ``{"server_mode": {...}}`` shape."""
        return {'server_mode': {'enabled': self.enabled, 'server_url': self.server_url,
                                'stream_key': self.stream_key, 'stream_password': self.stream_password,
                                'fallback_to_local': self.fallback_to_local}}

    def to_parameters(self, include_password: bool = False) -> dict[str, Any]:
        """The same settings as ``streaming_node`` parameters."""
        params: dict[str, Any] = {
            'mode': 'server' if self.enabled else 'local',
            'server_url': self.server_url,
            'stream_key': self.stream_key,
            'fallback_to_local': self.fallback_to_local,
        }
        if include_password:
            params['stream_password'] = self.stream_password
        return params

    def applied_parameters(self) -> dict[str, Any]:
        """The ``streaming_node`` parameters these settings set: the ones left empty (no
        server yet, no password saved) keep the node's own values.
        """
        return {name: value for name, value in self.to_parameters(include_password=True).items()
                if value != ''}


def read_settings_file(path: Path) -> Optional[ServerModeConfig]:
    """The settings saved in ``path``; None when there is no such file. ValueError (naming
    the file) when it cannot be read or holds invalid settings.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f'{path}: {exc.strerror or exc}') from None
    try:
        return ServerModeConfig.from_legacy(json.loads(text))
    except (ValueError, AttributeError) as exc:
        raise ValueError(f'{path}: {exc}') from None
