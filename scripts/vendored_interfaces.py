#!/usr/bin/env python3
"""Decide which of the workspace's stand-in interface packages colcon builds.

``src/audio_common_msgs`` and ``src/tf2_msgs`` copy upstream ROS interface packages for
installations that lack them (the PyPI wheels). Where an installed ROS prefix (any
``AMENT_PREFIX_PATH`` entry outside this workspace's ``install/``) already has the
package, this writes ``COLCON_IGNORE`` into the stand-in and removes its old build and
install directories, so the installed package is the one used; otherwise it removes the
``COLCON_IGNORE``. ``scripts/setup.sh`` runs it before ``colcon build``.

    python3 scripts/vendored_interfaces.py [--workspace DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

STAND_INS = ('audio_common_msgs', 'tf2_msgs')
MARKER = 'COLCON_IGNORE'


def installed_elsewhere(package: str, prefixes: list[str], workspace: Path) -> str:
    """Returns the first prefix outside ``workspace`` that has ``package``, or ''."""
    own = (workspace / 'install').resolve()
    for prefix in prefixes:
        path = Path(prefix).resolve()
        if path == own or own in path.parents:
            continue
        if (path / 'share/ament_index/resource_index/packages' / package).is_file():
            return str(path)
    return ''


def decide(workspace: Path, prefixes: list[str]) -> dict[str, str]:
    """Marks or unmarks each stand-in; returns package -> installed prefix ('' = build it)."""
    decisions = {}
    for package in STAND_INS:
        source = workspace / 'src' / package
        if not source.is_dir():
            continue
        prefix = installed_elsewhere(package, prefixes, workspace)
        marker = source / MARKER
        if prefix:
            marker.write_text(f'{package} is installed in {prefix}: the stand-in is not built\n')
            for stale in (workspace / 'install' / package, workspace / 'build' / package):
                shutil.rmtree(stale, ignore_errors=True)
        else:
            marker.unlink(missing_ok=True)
        decisions[package] = prefix
    return decisions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--workspace', type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    for package, prefix in decide(args.workspace, prefixes).items():
        print(f'{package}: ' + (f'installed in {prefix}, using it' if prefix
                                else 'not installed, building the stand-in'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
