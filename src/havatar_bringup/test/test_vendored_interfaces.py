"""scripts/vendored_interfaces.py: the stand-in interface packages (src/audio_common_msgs,
src/tf2_msgs) are built only where no installed ROS prefix has them, and never shadow one.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from havatar_testing import WORKSPACE

STAND_INS = ('audio_common_msgs', 'tf2_msgs')


def fake_workspace(root: Path) -> Path:
    ws = root / 'ws'
    for package in STAND_INS:
        shutil.copytree(WORKSPACE / 'src' / package, ws / 'src' / package,
                        ignore=shutil.ignore_patterns('COLCON_IGNORE'))
    return ws


def fake_prefix(root: Path, *packages: str) -> Path:
    index = root / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    for package in packages:
        (index / package).write_text('')
    return root


def run(ws: Path, *prefixes: Path) -> str:
    done = subprocess.run([sys.executable, WORKSPACE / 'scripts' / 'vendored_interfaces.py', '--workspace', ws],
                          capture_output=True, text=True, timeout=30, check=True,
                          env={**os.environ, 'AMENT_PREFIX_PATH': os.pathsep.join(map(str, prefixes))})
    return done.stdout


def colcon_packages(ws: Path) -> set[str]:
    done = subprocess.run(['colcon', 'list', '--names-only', '--base-paths', 'src'], cwd=ws,
                          capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split())


def test_an_installed_package_is_used_and_the_stand_in_skipped(tmp_path):
    ws = fake_workspace(tmp_path)
    ros = fake_prefix(tmp_path / 'opt_ros', 'audio_common_msgs', 'std_msgs')
    (ws / 'install' / 'audio_common_msgs').mkdir(parents=True)  # built before the package was installed

    out = run(ws, ros)

    assert f'audio_common_msgs: installed in {ros}' in out
    assert 'tf2_msgs: not installed, building the stand-in' in out
    assert colcon_packages(ws) == {'tf2_msgs'}
    assert not (ws / 'install' / 'audio_common_msgs').exists()  # would come first on the paths


def test_the_workspace_own_install_does_not_count_and_a_removed_package_is_built_again(tmp_path):
    ws = fake_workspace(tmp_path)
    ros = fake_prefix(tmp_path / 'opt_ros', 'audio_common_msgs', 'tf2_msgs')
    run(ws, ros)
    assert colcon_packages(ws) == set()

    own = fake_prefix(ws / 'install' / 'audio_common_msgs', 'audio_common_msgs')
    run(ws, own, fake_prefix(tmp_path / 'other', 'std_msgs'))  # the ROS package was uninstalled

    assert colcon_packages(ws) == set(STAND_INS)
