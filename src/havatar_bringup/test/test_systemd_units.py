"""The systemd user units (systemd/*.service) as scripts/install-service.sh installs them:
``systemd-analyze verify`` accepts them, their ExecStart runs, --dry-run changes nothing.
"""
from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from havatar_testing import WORKSPACE, free_port, ros_executable  # noqa: F401  (workspace built)
from havatar_testing.systemd import NotifySocket

INSTALL = WORKSPACE / 'scripts' / 'install-service.sh'
UNITS = {'--robot': 'havatar-robot.service', '--server': 'havatar-relay.service'}


def install(home: Path, *args: str, bin_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = f'{bin_dir}:{os.environ["PATH"]}' if bin_dir else os.environ['PATH']
    env = {**os.environ, 'HOME': str(home), 'PATH': path, 'USER': 'havatar'}
    env.pop('XDG_CONFIG_HOME', None)
    env.pop('SUDO_USER', None)  # --system takes the robot's user from it
    return subprocess.run(['bash', INSTALL, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def stub_bin(tmp_path: Path) -> Path:
    """Stub `systemctl` and `loginctl` that only record their arguments (no user manager here)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name in ('systemctl', 'loginctl'):
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\n[ "$1" = show-user ] && exit 1\necho {name} "$@" >> {tmp_path / "calls"}\n')
        path.chmod(0o755)
    return bin_dir


def exec_start(unit: str, home: Path) -> list[str]:
    """The unit's ExecStart as systemd runs it (``%h`` is the home, ``$$`` a ``$``)."""
    line = next(line for line in unit.splitlines() if line.startswith('ExecStart='))
    return shlex.split(line.partition('=')[2].replace('%h', str(home)).replace('$$', '$'))


def unit_environment(unit: str, home: Path) -> dict[str, str]:
    env = {}
    for line in unit.splitlines():
        if line.startswith('Environment='):
            name, _, value = line.partition('=')[2].partition('=')
            env[name] = value.replace('%h', str(home))
    return env


@pytest.mark.parametrize('role', UNITS)
def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path, stub_bin, role):
    home = tmp_path / 'home'
    home.mkdir()
    done = install(home, role, '--dry-run', bin_dir=stub_bin)
    assert done.returncode == 0, done.stderr
    unit = home / '.config' / 'systemd' / 'user' / UNITS[role]
    assert f'would write {unit} (mode 644):' in done.stdout
    assert f'ExecStart=/bin/bash -c \'. "{WORKSPACE}/scripts/env.sh"' in done.stdout
    assert '@WORKSPACE@' not in done.stdout
    assert f'would run: systemctl --user enable {UNITS[role]}' in done.stdout
    assert 'would run: loginctl enable-linger havatar' in done.stdout
    assert list(home.iterdir()) == [] and not (tmp_path / 'calls').exists()


def test_installed_units_pass_systemd_analyze_verify(tmp_path, stub_bin):
    analyze = shutil.which('systemd-analyze')
    assert analyze, 'systemd-analyze is missing: scripts/setup.sh installs the Debian package systemd'
    home = tmp_path / 'home'
    home.mkdir()
    for role in UNITS:
        done = install(home, role, bin_dir=stub_bin)
        assert done.returncode == 0, done.stdout + done.stderr
    units = [home / '.config' / 'systemd' / 'user' / name for name in UNITS.values()]
    runtime = tmp_path / 'runtime'
    runtime.mkdir(mode=0o700)
    verified = subprocess.run([analyze, 'verify', '--user', *units], capture_output=True, text=True, timeout=60,
                              env={**os.environ, 'HOME': str(home), 'XDG_RUNTIME_DIR': str(runtime)})
    assert verified.returncode == 0 and not (verified.stdout + verified.stderr).strip(), verified.stderr
    for name in ('robot.env', 'relay.env'):
        assert stat.S_IMODE((home / '.config' / 'havatar' / name).stat().st_mode) == 0o600
    calls = (tmp_path / 'calls').read_text().splitlines()
    assert 'systemctl --user enable havatar-robot.service' in calls
    assert 'systemctl --user restart havatar-robot.service' in calls
    assert 'systemctl --user restart havatar-relay.service' not in calls  # no accounts yet
    assert 'loginctl enable-linger havatar' in calls
    again = install(home, '--robot', bin_dir=stub_bin)  # run again: the settings are kept
    assert f'keeping {home}/.config/havatar/robot.env' in again.stdout


def test_the_relay_units_command_starts_the_relay_and_it_says_ready(processes, tmp_path, stub_bin):
    home = tmp_path / 'home'
    home.mkdir()
    assert install(home, '--server', bin_dir=stub_bin).returncode == 0
    (home / '.config' / 'havatar' / 'relay.yaml').write_text('robots: {}\nusers: {}\n')
    unit = (home / '.config' / 'systemd' / 'user' / 'havatar-relay.service').read_text()
    systemd = NotifySocket(tmp_path / 'notify')
    try:
        port = free_port()
        relay = processes.start('relay', exec_start(unit, home), env={
            **unit_environment(unit, home), **systemd.env, 'HOME': str(home), 'HAVATAR_RELAY_PORT': str(port)})
        systemd.wait_for('READY=1', timeout=30, alive=relay.running)
        assert f'listening on 127.0.0.1:{port}' in relay.output()  # HAVATAR_RELAY_HOST from the unit
    finally:
        systemd.close()


def test_the_robot_units_command_passes_the_launch_arguments(tmp_path, stub_bin):
    home = tmp_path / 'home'
    home.mkdir()
    assert install(home, '--robot', bin_dir=stub_bin).returncode == 0
    unit = (home / '.config' / 'systemd' / 'user' / 'havatar-robot.service').read_text()
    shown = subprocess.run(exec_start(unit, home), capture_output=True, text=True, timeout=60,
                           env={**os.environ, 'HOME': str(home), 'HAVATAR_ROBOT_ARGS': '--show-args'})
    assert shown.returncode == 0, shown.stderr
    assert "'serial_port':" in shown.stdout and "'relay_url':" in shown.stdout


def planned_files(dry_run_output: str) -> dict[str, str]:
    """The files a --dry-run says it would write, with their contents."""
    files: dict[str, list[str]] = {}
    current = None
    for line in dry_run_output.splitlines():
        if line.startswith('would write ') and line.endswith('):'):
            current = line.split()[2]
            files[current] = []
        elif current is not None and (line.startswith('    ') or not line):
            files[current].append(line[4:])
        else:
            current = None
    return {path: '\n'.join(lines) + '\n' for path, lines in files.items()}


def test_the_system_unit_is_confined_to_the_robots_devices_and_passes_verify(tmp_path, stub_bin):
    """--system: the unit in /etc/systemd/system with the user's home for %h and the drop-in
    of DeviceAllow= for the serial port, cameras and sound, as the robot's user.
    """
    analyze = shutil.which('systemd-analyze')
    assert analyze, 'systemd-analyze is missing: scripts/setup.sh installs the Debian package systemd'
    home = tmp_path / 'home'
    home.mkdir()
    done = install(home, '--robot', '--system', '--dry-run', bin_dir=stub_bin)
    assert done.returncode == 0, done.stderr
    assert list(home.iterdir()) == [] and not (tmp_path / 'calls').exists(), 'a dry run changes nothing'
    files = planned_files(done.stdout)
    unit_path, dropin_path = '/etc/systemd/system/havatar-robot.service', \
        '/etc/systemd/system/havatar-robot.service.d/devices.conf'
    assert set(files) == {unit_path, dropin_path, f'{home}/.config/havatar/robot.env'}
    unit, dropin = files[unit_path], files[dropin_path]
    assert '%h' not in unit and '@WORKSPACE@' not in unit
    assert f'EnvironmentFile=-{home}/.config/havatar/robot.env' in unit
    assert 'User=havatar' in dropin.splitlines()
    for line in ('would run: systemctl daemon-reload', 'would run: systemctl enable havatar-robot.service',
                 f'would run: chown havatar: {home}/.config/havatar {home}/.config/havatar/robot.env'):
        assert line in done.stdout
    assert not [line for line in done.stdout.splitlines()
                if line.startswith('would run: ') and ('--user' in line or 'enable-linger' in line)]

    units = tmp_path / 'system'
    (units / 'havatar-robot.service.d').mkdir(parents=True)
    (units / 'havatar-robot.service').write_text(unit)
    (units / 'havatar-robot.service.d' / 'devices.conf').write_text(dropin)
    verified = subprocess.run([analyze, 'verify', units / 'havatar-robot.service'], capture_output=True,
                              text=True, timeout=60, cwd=units)
    assert verified.returncode == 0 and not (verified.stdout + verified.stderr).strip(), verified.stderr
    # the drop-in is read with the unit, and its device list is the one in force
    security = subprocess.run([analyze, 'security', '--offline=true', units / 'havatar-robot.service'],
                              capture_output=True, text=True, timeout=60, cwd=units)
    acl = next(line for line in security.stdout.splitlines() if 'DeviceAllow=' in line)
    assert sorted(acl.split('special devices:')[1].split()[:5]) == [
        'char-alsa:rw', 'char-ttyACM:rw', 'char-ttyAMA:rw', 'char-ttyUSB:rw', 'char-video4linux:rw'], acl
    assert any(line.startswith('✓ User=') for line in security.stdout.splitlines()), 'a non-root user'


@pytest.mark.parametrize('args,error', [
    (('--server', '--system'), '--system is for the robot'),
    (('--robot', '--system'), 'run it with sudo'),  # not root, not a dry run
])
def test_the_system_unit_is_refused_where_it_cannot_be_installed(tmp_path, stub_bin, args, error):
    home = tmp_path / 'home'
    home.mkdir()
    (stub_bin / 'id').write_text('#!/bin/sh\n[ "$1" = -u ] && { echo 1000; exit 0; }\nexec /usr/bin/id "$@"\n')
    (stub_bin / 'id').chmod(0o755)  # a user without root, also where the tests run as root
    done = install(home, *args, bin_dir=stub_bin)
    assert done.returncode != 0 and error in done.stderr, done.stdout + done.stderr
    assert list(home.iterdir()) == [] and not (tmp_path / 'calls').exists()
