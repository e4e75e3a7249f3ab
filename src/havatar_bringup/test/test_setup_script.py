"""scripts/setup.sh on a machine the ROS 2 wheels do not exist for (a Raspberry Pi without
/opt/ros): it stops before installing anything and prints the supported routes.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from havatar_testing import WORKSPACE

INSTALLERS = ('apt-get', 'sudo', 'dpkg-query', 'pip', 'pip3')


def stub(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text('#!/bin/sh\n' + script + '\n')
    path.chmod(0o755)


@pytest.mark.skipif(bool(glob.glob('/opt/ros/*/setup.bash')), reason='a ROS 2 in /opt/ros is used first')
@pytest.mark.parametrize('arch', ['aarch64', 'armv7l'])
def test_setup_stops_before_installing_on_a_pi_without_ros(tmp_path, arch):
    workspace = tmp_path / 'ws'
    (workspace / 'scripts').mkdir(parents=True)
    shutil.copy(WORKSPACE / 'scripts' / 'setup.sh', workspace / 'scripts' / 'setup.sh')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    calls = tmp_path / 'calls'
    stub(bin_dir, 'uname', f'[ "$1" = -m ] && echo {arch} && exit 0; exec /bin/uname "$@"')
    for name in INSTALLERS:  # any of these running would be an installation starting
        stub(bin_dir, name, f'echo {name} "$@" >> {calls}; exit 1')

    done = subprocess.run(['bash', workspace / 'scripts' / 'setup.sh', '--no-run'], capture_output=True,
                          text=True, timeout=60, env={**os.environ, 'PATH': f'{bin_dir}:{os.environ["PATH"]}'})

    assert done.returncode == 1, done.stdout + done.stderr
    assert f'the ROS 2 wheels on PyPI exist only for x86_64\n(this machine is {arch})' in done.stderr
    for command in ('sudo apt-get update && sudo apt-get install -y ros-jazzy-ros-base',
                    'docker build -f docker/robot.Dockerfile -t havatar/robot .',
                    'ros2 launch havatar_bringup robot.launch.py serial_port:=/dev/ttyESP32'):
        assert command in done.stderr
    assert 'http://packages.ros.org/ros2/ubuntu $(. /etc/os-release' in done.stderr  # printed, not expanded
    assert not calls.exists(), calls.read_text()
    assert not (workspace / 'tools' / 'venv').exists()
    assert 'Checking system packages' not in done.stdout
