#!/usr/bin/env python3
"""Print every topic of the default launch with its type and QoS (for docs/ros-tools.md).

Runs the robot's graph (``run_robot sim:=true``: the default launch's nodes with simulated
hardware) in a ROS domain and ports of its own, localhost only, waits until every node
runs, prints what ``topic_table`` sees, and stops the graph. Needs the built workspace::

    . scripts/env.sh && python scripts/default_topics.py [launch arguments, e.g. foxglove:=true]
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

WS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(WS / 'testing'))

from havatar_bringup.processes import ProcessManager, free_port  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment  # noqa: E402


def private_params(directory: Path) -> Path:
    """robot.yaml with ports nobody else uses now."""
    config = yaml.safe_load((WS / 'src/havatar_bringup/config/robot.yaml').read_text())
    mjpeg = free_port()
    for node, key, port in (('streaming_node', 'mjpeg_port', mjpeg), ('relay_node', 'mjpeg_port', mjpeg),
                            ('relay_node', 'http_port', free_port()), ('foxglove_node', 'port', free_port())):
        section = config.get(f'/**/{node}', {}).get('ros__parameters', {})
        if key in section:
            section[key] = port
    path = directory / 'robot.yaml'
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> int:
    lease = DomainLease()
    with tempfile.TemporaryDirectory(prefix='havatar-topics-') as tmp:
        tmpdir = Path(tmp)
        env = {**os.environ, **ros_environment(lease.domain_id), 'XDG_CONFIG_HOME': str(tmpdir / 'config'),
               'HAVATAR_ACCESS_TOKEN': secrets.token_urlsafe(16), 'HAVATAR_ROBOT_TOKEN': secrets.token_urlsafe(16)}
        run_robot = WS / 'install/havatar_bringup/lib/havatar_bringup/run_robot'
        (tmpdir / 'logs').mkdir()
        processes = ProcessManager(tmpdir / 'logs', env, die_with_parent=True)
        try:
            robot = processes.start('run_robot', [run_robot, 'sim:=true', f'params_file:={private_params(tmpdir)}',
                                                  f'sim_dir:={tmpdir / "sim"}', *sys.argv[1:],
                                                  '--log-dir', tmpdir / 'node-logs'])
            robot.wait_for_output(r'nodes running', timeout=120)
            done = subprocess.run([sys.executable, '-m', 'havatar_bringup.topic_table', '--settle', '5',
                                   '--timeout', '60'], env=env, capture_output=True, text=True, timeout=120)
            print(done.stdout, end='')
            return done.returncode
        finally:
            processes.stop_all()
            lease.release()


if __name__ == '__main__':
    sys.exit(main())
