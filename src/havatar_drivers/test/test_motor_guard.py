"""motor_guard: STOP written the moment the lock holder (the motor node) dies, and only then."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

from havatar_drivers.esp32.guard import (MotorLock, READY_LINE, guard_once, open_lock, process_stopped,
                                         read_holder, read_port)
from havatar_testing import ros_executable, wait_until

HOLDER = """
import sys, time
from havatar_drivers.esp32.guard import MotorLock
lock = MotorLock(sys.argv[1])
lock.set_port(sys.argv[2])
print('holding', flush=True)
if sys.argv[3] == 'clean':
    lock.close()
    print('closed', flush=True)
time.sleep(600)
"""


@pytest.fixture
def pty_port():
    """A pseudo-terminal standing in for the ESP32's port: (master fd, slave path)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def read_line(master: int, timeout: float) -> bytes:
    """One line written to the port, or b'' if none came within ``timeout``."""
    data = b''
    deadline = time.monotonic() + timeout
    while not data.endswith(b'\n'):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([master], [], [], left)[0]:
            return b''
        data += os.read(master, 100)
    return data


def start_holder(lock: Path, port: str, how: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(lock), port, how],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline() == 'holding\n'
    if how == 'clean':
        assert holder.stdout.readline() == 'closed\n'
    return holder


@pytest.fixture
def motor_guard(processes, tmp_path):
    lock = tmp_path / 'run' / 'motor_node.lock'
    guard = processes.start('motor_guard', [ros_executable('havatar_drivers', 'motor_guard'),
                                            '--lock', lock])
    guard.wait_for_output(READY_LINE, timeout=15)
    return guard, lock


def test_a_killed_holder_gets_stop_written_at_once_a_clean_one_does_not(motor_guard, pty_port):
    guard, lock = motor_guard
    master, port = pty_port
    clean = start_holder(lock, port, 'clean')
    try:
        assert read_line(master, 1.0) == b'', 'a holder that closed cleanly had stopped the motors'
    finally:
        clean.kill()
        clean.wait()
    assert read_line(master, 0.5) == b''

    for _ in range(3):  # one after another, as the motor node is respawned
        holder = start_holder(lock, port, 'kill')
        time.sleep(0.2)  # the guard is blocked on the lock now
        killed = time.monotonic()
        holder.kill()
        assert read_line(master, 5.0) == b'STOP\n'
        print(f'STOP {1000 * (time.monotonic() - killed):.1f} ms after SIGKILL')
        holder.wait()
        assert read_line(master, 0.3) == b'', 'one STOP per death'
    guard.wait_for_output(f'wrote STOP to {port}', timeout=5)
    assert guard.running()


def test_a_stopped_holder_gets_stop_once_per_stop(motor_guard, pty_port):
    """A hung motor node keeps its lock: the guard sees it stopped in /proc."""
    guard, lock = motor_guard
    master, port = pty_port
    holder = start_holder(lock, port, 'kill')
    try:
        for _ in range(2):  # stopped, resumed, stopped again
            stopped = time.monotonic()
            holder.send_signal(signal.SIGSTOP)
            assert read_line(master, 5.0) == b'STOP\n'
            print(f'STOP {1000 * (time.monotonic() - stopped):.1f} ms after SIGSTOP')
            assert read_line(master, 0.3) == b'', 'one STOP while it stays stopped'
            holder.send_signal(signal.SIGCONT)
            wait_until(lambda: not process_stopped(holder.pid), 5, 'the holder running again')
            assert read_line(master, 0.2) == b''
    finally:
        holder.kill()
        holder.wait()
    assert read_line(master, 5.0) == b'STOP\n', 'and when it dies'
    guard.wait_for_output('the motor node is stopped', timeout=5)


def test_a_holder_dead_before_the_guard_looked_still_gets_stop(pty_port, tmp_path):
    """Content left in a free lock: its holder died without closing (even before the guard
    started, as after a crash of the whole robot).
    """
    master, port = pty_port
    lock = tmp_path / 'motor_node.lock'
    holder = start_holder(lock, port, 'kill')
    holder.kill()
    holder.wait()
    fd = open_lock(lock)
    try:
        assert read_holder(fd) == (port, holder.pid)
        assert guard_once(fd) == (False, (port, None))
        assert read_line(master, 2.0) == b'STOP\n'
        assert read_port(fd) == '' and guard_once(fd) == (False, None)
    finally:
        os.close(fd)


def test_the_guard_reports_a_port_it_cannot_write(tmp_path):
    lock = tmp_path / 'motor_node.lock'
    holder = start_holder(lock, '/nonexistent/ttyUSB0', 'kill')
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    fd = open_lock(lock)
    try:
        waited, (port, error) = guard_once(fd)
        assert port == '/nonexistent/ttyUSB0' and error.startswith('cannot open /nonexistent/ttyUSB0')
    finally:
        os.close(fd)


def test_a_second_motor_lock_on_the_same_file_fails_after_its_timeout(tmp_path):
    first = MotorLock(tmp_path / 'motor_node.lock')
    try:
        with pytest.raises(RuntimeError, match='locked by another process'):
            MotorLock(tmp_path / 'motor_node.lock', timeout=0.2)
    finally:
        first.close()
    MotorLock(tmp_path / 'motor_node.lock', timeout=0.2).close()  # free again


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_the_guard_ends_on_sigint_and_sigterm_also_started_with_sigint_ignored(tmp_path, sig):
    """As a shell starts a program in the background (SIGINT ignored); launch sends SIGINT first."""
    guard = subprocess.Popen([ros_executable('havatar_drivers', 'motor_guard'), '--lock', tmp_path / 'lock'],
                             stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert guard.stdout is not None and guard.stdout.readline().startswith(READY_LINE)
        guard.send_signal(sig)
        assert guard.wait(timeout=10) == 0
    finally:
        guard.kill()
        guard.wait()


def test_the_lock_file_is_refused_behind_a_symlink_or_in_a_directory_anyone_may_write(tmp_path):
    private = tmp_path / 'private'
    private.mkdir(mode=0o700)
    victim = tmp_path / 'victim'
    victim.write_text('precious')
    (private / 'motor_node.lock').symlink_to(victim)
    with pytest.raises(OSError):
        MotorLock(private / 'motor_node.lock')
    assert victim.read_text() == 'precious'
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PermissionError, match='not be writable by others'):
        open_lock(shared / 'motor_node.lock')


def test_a_motor_node_whose_lock_file_is_refused_still_drives(start_sim, start_motor_node, ros_node, tmp_path):
    from geometry_msgs.msg import Twist
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    sim = start_sim('v1')
    node = start_motor_node(sim.port, lock_file=shared / 'motor_node.lock')
    forward = Twist()
    forward.linear.x = 0.25
    cmd_vel = ros_node.node.create_publisher(Twist, 'cmd_vel', 10)
    ros_node.node.create_timer(0.05, lambda: cmd_vel.publish(forward))
    sim.wait_for_line(lambda line: line == 'PWM 128 128', timeout=20)
    assert 'cannot use lock_file' in node.output() and node.running()
    assert not (shared / 'motor_node.lock').exists()
