"""Check the installation: ROS 2, the built interfaces, and the programs Havatar runs.

Prints one line per check and exits non-zero if any failed, naming what is missing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

WS = Path(__file__).resolve().parents[1]


def check_ros() -> str:
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('havatar_self_check', context=context)
        node.destroy_node()
    finally:
        context.try_shutdown()
    return f'rclpy ok, RMW {os.environ.get("RMW_IMPLEMENTATION") or "default"}, ' \
           f'ROS_DISTRO {os.environ.get("ROS_DISTRO", "jazzy (wheels)")}'


def check_interfaces() -> str:
    from havatar_msgs.msg import AudioChunk, AudioFormat, StreamStatus
    from havatar_msgs.srv import SetStreamMode

    names = [t.__name__ for t in (AudioChunk, AudioFormat, StreamStatus, SetStreamMode)]
    return 'havatar_msgs: ' + ', '.join(names)


def check_packages() -> str:
    from ament_index_python.packages import get_packages_with_prefixes

    ours = sorted(p for p in get_packages_with_prefixes() if p.startswith('havatar_'))
    expected = ['havatar_bringup', 'havatar_common', 'havatar_drivers', 'havatar_msgs', 'havatar_relay',
                'havatar_streaming']
    if ours != expected:
        raise RuntimeError(f'built packages {ours}, expected {expected}')
    return ', '.join(ours)


def program(name: str, *version_args: str) -> Callable[[], str]:
    def check() -> str:
        local = WS / 'tools' / 'bin' / name
        path = str(local) if local.exists() else shutil.which(name)
        if path is None:
            raise RuntimeError(f'{name} not found (run scripts/setup.sh)')
        result = subprocess.run([path, *version_args], capture_output=True, text=True,
                                timeout=30, check=True)
        first = (result.stdout or result.stderr).strip().splitlines()[0]
        return f'{path}: {first}'
    return check


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ('ROS 2', check_ros),
    ('interfaces', check_interfaces),
    ('packages', check_packages),
    ('MediaMTX', program('mediamtx', '--version')),
    ('ffmpeg', program('ffmpeg', '-version')),
    ('Redis', program('redis-server', '--version')),
    ('Chromium', program('chromium', '--version')),
    ('espeak-ng', program('espeak-ng', '--version')),
]


def main() -> int:
    failed = []
    for name, check in CHECKS:
        try:
            print(f'  ok    {name:<11} {check()}')
        except Exception as exc:  # report every failure, not only the first
            print(f'  FAIL  {name:<11} {exc}')
            failed.append(name)
    if failed:
        print(f'\nself-check failed: {", ".join(failed)}', file=sys.stderr)
        return 1
    print('\nHavatar is installed.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
