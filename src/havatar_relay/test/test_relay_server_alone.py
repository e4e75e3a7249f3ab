"""The cloud relay server runs as its Docker image runs it: in a fresh virtual environment
holding only ``scripts/requirements-relay.txt``, with only ``havatar_relay`` and
``havatar_common`` on its path -- no ROS, no other Havatar package.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from havatar_testing import WORKSPACE, free_port
from havatar_testing.relay import ACCOUNTS, Client, drive

REQUIREMENTS = WORKSPACE / 'scripts' / 'requirements-relay.txt'
PACKAGES = ('havatar_relay', 'havatar_common')  # what docker/relay.Dockerfile copies
FORBIDDEN = ('rclpy', 'rcl_interfaces', 'numpy', 'PIL', 'havatar_msgs', 'havatar_streaming',
             'havatar_drivers', 'havatar_bringup')
VENV_TIMEOUT_S = 240
PIP_TIMEOUT_S = 480
IMPORT_CHECK = f"""
import importlib.util, json, sys
import havatar_relay.server.app
print(json.dumps({{
    'loaded': sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}),
    'installed': sorted(m for m in {FORBIDDEN!r} if importlib.util.find_spec(m)),
}}))
"""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, 'w') as handle:  # one builder at a time (parallel test runs)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope='session')
def relay_venv(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a virtual environment with the relay's requirements only; kept in the
    pytest cache, keyed by the requirements and this Python, so it is built once.
    """
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()[:16]
    cache = getattr(pytestconfig, 'cache', None)
    root = cache.mkdir('relay-venv') if cache is not None else tmp_path_factory.mktemp('relay-venv')
    venv = root / key
    done = venv / '.havatar-complete'
    with _locked(root / '.lock'):
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)  # a build that did not finish
            subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True,
                           timeout=VENV_TIMEOUT_S)
            subprocess.run([str(venv / 'bin' / 'python'), '-m', 'pip', 'install', '--quiet',
                            '--disable-pip-version-check', '-r', str(REQUIREMENTS)],
                           check=True, timeout=PIP_TIMEOUT_S)
            done.touch()
    return venv / 'bin' / 'python'


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """The image's /app: the two packages, nothing else."""
    app = tmp_path / 'app'
    for name in PACKAGES:
        shutil.copytree(WORKSPACE / 'src' / name / name, app / name,
                        ignore=shutil.ignore_patterns('__pycache__'))
    return app


def alone(app: Path) -> dict[str, str]:
    return {'PYTHONPATH': str(app), 'PYTHONNOUSERSITE': '1'}


@pytest.mark.timeout(VENV_TIMEOUT_S + PIP_TIMEOUT_S + 120)
def test_relay_server_runs_with_its_requirements_only(relay_venv, app_dir, processes, tmp_path):
    check = subprocess.run([str(relay_venv), '-c', IMPORT_CHECK], cwd=app_dir,
                           env={**processes.env, **alone(app_dir)}, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, f'the relay server does not import alone:\n{check.stderr}'
    modules = json.loads(check.stdout.strip().splitlines()[-1])
    assert modules == {'loaded': [], 'installed': []}, check.stdout

    config = tmp_path / 'relay.yaml'
    config.write_text(yaml.safe_dump(ACCOUNTS))
    port = free_port()
    server = processes.start('relay_server', [
        relay_venv, '-m', 'havatar_relay.server.app', '--config', config,
        '--host', '127.0.0.1', '--port', str(port)], env=alone(app_dir), cwd=app_dir)
    base = f'http://127.0.0.1:{port}'
    server.wait_for_http(base + '/health', timeout=30, ok=lambda status: status == 200)

    async def hellos() -> None:
        robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
        user = await Client.connect(base, 'user', 'alice-token', 'robot1')
        assert robot.welcome and user.welcome and user.welcome['robot_online']
        await user.send(drive(1))
        assert (await robot.next('drive'))['seq'] == 1
        for client in (robot, user):
            await client.close()
    asyncio.run(asyncio.wait_for(hellos(), 30))
