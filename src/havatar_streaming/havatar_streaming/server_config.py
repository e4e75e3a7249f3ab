"""The original robot's ``server_mode`` settings, and ``convert_server_config``.

The Flask version kept them in ``avatar_tank_config.json``::

    {"server_mode": {"enabled": true, "server_url": "rtsp://example.org:8554",
                     "stream_key": "robot1", "stream_password": "...",
                     "fallback_to_local": true}}

``convert_server_config old.json > streaming.yaml`` writes the same settings as a ROS 2
parameter file for ``streaming_node``. The password is written only with
``--include-password``; otherwise set ``HAVATAR_STREAM_PASSWORD`` on the robot.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml


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
        unknown = set(block) - {'enabled', 'server_url', 'stream_key', 'stream_password',
                                'fallback_to_local'}
        if unknown:
            raise ValueError(f'unknown server_mode keys: {", ".join(sorted(unknown))}')
        config = cls(enabled=bool(block.get('enabled', False)),
                     server_url=str(block.get('server_url', '')),
                     stream_key=str(block.get('stream_key', '')),
                     stream_password=str(block.get('stream_password', '')),
                     fallback_to_local=bool(block.get('fallback_to_local', True)))
        if config.enabled and not (config.server_url and config.stream_key):
            raise ValueError('server_mode enabled without server_url and stream_key')
        return config

    def to_parameters(self, include_password: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = {
            'mode': 'server' if self.enabled else 'local',
            'server_url': self.server_url,
            'stream_key': self.stream_key,
            'fallback_to_local': self.fallback_to_local,
        }
        if include_password:
            params['stream_password'] = self.stream_password
        return params


def to_parameter_file(config: ServerModeConfig, node_name: str = 'streaming_node',
                      include_password: bool = False) -> str:
    return yaml.safe_dump({node_name: {'ros__parameters': config.to_parameters(include_password)}},
                          sort_keys=False)


def main(args: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='convert_server_config',
        description="Convert the Flask robot's avatar_tank_config.json server_mode block "
                    'into a ROS 2 parameter file for streaming_node.')
    parser.add_argument('json_file', type=Path)
    parser.add_argument('-o', '--output', type=Path, help='write here instead of stdout')
    parser.add_argument('--node-name', default='streaming_node')
    parser.add_argument('--include-password', action='store_true',
                        help='copy stream_password into the file (default: use the '
                             'HAVATAR_STREAM_PASSWORD environment variable instead)')
    options = parser.parse_args(args)
    try:
        config = ServerModeConfig.from_legacy(json.loads(options.json_file.read_text()))
    except (OSError, ValueError) as exc:
        print(f'convert_server_config: {options.json_file}: {exc}', file=sys.stderr)
        return 1
    text = to_parameter_file(config, options.node_name, options.include_password)
    if options.output:
        options.output.write_text(text)
        if options.include_password:
            options.output.chmod(0o600)
    else:
        sys.stdout.write(text)
    if config.stream_password and not options.include_password:
        print('note: the stream password was not copied; export HAVATAR_STREAM_PASSWORD on the '
              'robot (or pass --include-password)', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
