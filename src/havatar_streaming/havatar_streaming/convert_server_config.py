"""``convert_server_config``: the Flask robot's ``avatar_tank_config.json`` to ROS 2 parameters.

The Flask version kept its server-mode settings in that file's ``server_mode`` block (the
model is ``server_settings.ServerModeConfig``). ``convert_server_config old.json >
streaming.yaml`` writes them as a ROS 2 parameter file for ``streaming_node``. The password
is written only with ``--include-password``; otherwise set ``HAVATAR_STREAM_PASSWORD`` on
the robot.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import yaml

from .server_settings import ServerModeConfig


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
