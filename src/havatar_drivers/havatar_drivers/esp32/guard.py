"""STOP to the motors the moment the motor node dies or is stopped (executable ``motor_guard``).

v1 firmware has no watchdog and keeps its last PWM. Under ``ros2 launch`` nothing else
would stop the motors before the respawned motor node is up (2-3.5 s), so a guard process
runs beside it:

- the motor node holds an exclusive ``flock`` on a lock file for its whole life
  (``MotorLock``) and writes into it the serial port it opened; closing cleanly (it sent
  STOP itself) it empties the file first;
- the guard (``guard``) blocks on the same lock. The kernel releases a lock when its holder
  dies, however it dies (SIGKILL included), so the guard wakes at once; a port still named
  in the file means the holder did not close cleanly: the guard writes STOP to it
  (``write_stop``) and empties the file. While no motor node holds the lock the guard
  checks it every ``LOCK_POLL_S`` (which also catches a holder that died between checks).
- a hung holder keeps its lock: a thread of the guard reads the holder's pid from the file
  every ``STOPPED_POLL_S`` and writes STOP once when the process is stopped (SIGSTOP, state
  T in ``/proc``), again if it is stopped again after running (``StoppedWatch``).

Nothing on this path imports rclpy or pyserial: the guard starts in a fraction of a
second and its STOP costs one ``open`` and one ``write``.
"""
from __future__ import annotations

import argparse
import errno
import fcntl
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, NoReturn, Optional

from havatar_common.lifetime import die_with_parent, inherited_parent_pid

from .protocol import STOP_LINE

LOCK_POLL_S = 0.05      # how often the lock is checked while no motor node holds it
STOPPED_POLL_S = 0.05   # how often the holder is checked for being stopped
ACQUIRE_TIMEOUT_S = 5.0  # a motor node waits this long for the lock (the guard holds it for
                         # a moment; another motor node on the same lock holds it for good)
READY_LINE = 'motor_guard: guarding'


def open_lock(path: str | Path) -> int:
    """The lock file's descriptor (created, with its directory, private to the user).

    The file is truncated and written: it must not be a symlink, nor in a directory that
    another user owns or anyone may write to (a shared temp dir planted with a link).
    """
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.parent.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o002:
        raise PermissionError(f'{path.parent} must belong to this user and not be writable by others')
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)


def try_lock(fd: int) -> bool:
    """Take the exclusive lock without waiting; False if another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def read_holder(fd: int) -> tuple[str, Optional[int]]:
    """The port and pid the holder wrote (``'', None`` when none)."""
    lines = os.pread(fd, 4096, 0).decode('utf-8', 'replace').splitlines()
    port = lines[0].strip() if lines else ''
    pid = lines[1].strip() if len(lines) > 1 else ''
    return port, int(pid) if pid.isdigit() else None


def read_port(fd: int) -> str:
    return read_holder(fd)[0]


def set_port(fd: int, port: str) -> None:
    """Name ``port`` (and this process) in the lock file; '' empties it."""
    os.ftruncate(fd, 0)
    if port:
        os.pwrite(fd, f'{port}\n{os.getpid()}\n'.encode(), 0)


def process_stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP, SIGTSTP) or traced: state T or t in /proc."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as stat:
            fields = stat.read().rsplit(b')', 1)[-1].split()
    except OSError:
        return False
    return bool(fields) and fields[0] in (b'T', b't')


def write_stop(port: str) -> Optional[str]:
    """Write STOP to the motor controller's serial port; None on success, else the error.

    The port is opened without touching its settings (the motor node set them; a hung
    node still holds it open, which Linux allows) and never blocks: a full output buffer
    is an error, not a wait.
    """
    try:
        fd = os.open(port, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        return f'cannot open {port}: {exc.strerror}'
    try:
        written = os.write(fd, STOP_LINE)
        return None if written == len(STOP_LINE) else f'short write to {port}'
    except OSError as exc:
        return f'cannot write to {port}: {errno.errorcode.get(exc.errno or 0, exc.strerror)}'
    finally:
        os.close(fd)


class MotorLock:
    """The motor node's side: held for the process's life, names the port it drives."""

    def __init__(self, path: str | Path, timeout: float = ACQUIRE_TIMEOUT_S) -> None:
        self.path = str(path)
        self.fd = open_lock(path)
        deadline = time.monotonic() + timeout
        while not try_lock(self.fd):
            if time.monotonic() > deadline:
                os.close(self.fd)
                raise RuntimeError(f'{self.path} is locked by another process for {timeout:.0f} s '
                                   '(a second motor node on the same lock?)')
            time.sleep(0.01)
        set_port(self.fd, '')

    def set_port(self, port: str) -> None:
        """The port now driven: the guard writes STOP to it if this process dies."""
        set_port(self.fd, port)

    def close(self) -> None:
        """A clean end (STOP already sent): the guard has nothing to do."""
        if self.fd < 0:
            return
        set_port(self.fd, '')
        os.close(self.fd)  # releases the lock
        self.fd = -1


def guard_once(fd: int) -> tuple[bool, Optional[tuple[str, Optional[str]]]]:
    """Take the lock, waiting for its holder to end if there is one; write STOP if a port
    is left in it; release it. Returns whether it waited, and ``(port, error)`` when STOP
    was due.
    """
    waited = not try_lock(fd)
    if waited:
        fcntl.flock(fd, fcntl.LOCK_EX)  # until the holder ends: the kernel wakes us at once
    try:
        port = read_port(fd)
        if not port:
            return waited, None
        error = write_stop(port)
        set_port(fd, '')
        return waited, (port, error)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


Report = Callable[[str, str, Optional[str]], None]  # (what happened, port, error or None)


class StoppedWatch:
    """Writes STOP once each time the lock's holder is seen stopped (checked by ``check``)."""

    def __init__(self, fd: int, report: Report) -> None:
        self.fd = fd
        self.report = report
        self.stopped_pid: Optional[int] = None  # the holder we stopped the motors for

    def check(self) -> None:
        port, pid = read_holder(self.fd)
        if not port or pid is None or not process_stopped(pid):
            self.stopped_pid = None
            return
        if pid != self.stopped_pid:
            self.stopped_pid = pid
            self.report('the motor node is stopped (hung)', port, write_stop(port))

    def run(self, poll: float = STOPPED_POLL_S) -> NoReturn:
        while True:
            self.check()
            time.sleep(poll)


def guard(path: str | Path, report: Report, poll: float = LOCK_POLL_S) -> NoReturn:
    """Forever: write STOP whenever a motor node holding ``path`` ends uncleanly or is stopped."""
    fd = open_lock(path)
    threading.Thread(target=StoppedWatch(fd, report).run, name='stopped-watch', daemon=True).start()
    while True:
        waited, result = guard_once(fd)
        if result is not None:
            report('the motor node ended without stopping the motors', *result)
        if not waited:  # no motor node yet (or between two): look again soon
            time.sleep(poll)


def _terminate(signum: int, frame: object) -> NoReturn:
    raise SystemExit(0)


def main(argv: Optional[list[str]] = None) -> NoReturn:
    parser = argparse.ArgumentParser(prog='motor_guard', description=__doc__.split('\n\n')[0])
    parser.add_argument('--lock', required=True, help="the motor node's lock_file")
    options = parser.parse_args(argv)
    die_with_parent(signal.SIGTERM, inherited_parent_pid())  # dies with ros2 launch / run_robot
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too where a shell ignored it for us
        signal.signal(sig, _terminate)

    def report(what: str, port: str, error: Optional[str]) -> None:
        print(f'motor_guard: {what}; {error or f"wrote STOP to {port}"}',
              file=sys.stderr if error else sys.stdout, flush=True)

    print(f'{READY_LINE} {options.lock}', flush=True)
    guard(options.lock, report)


if __name__ == '__main__':
    main()
