"""When the serial link's thread wakes: on the port's file descriptor, on a new command
(a self-pipe), or at the earliest deadline its pure parts name; never on a fixed tick.

``earliest`` and ``wait_timeout`` are pure; ``Waker`` is the small I/O helper around
``select`` and the pipe.
"""
from __future__ import annotations

import os
import select
import threading
from typing import Iterable, Optional

TIMER_SLACK_S = 0.0002  # past a deadline, so a strict ``>`` test (the deadman) already holds


def earliest(*deadlines: Optional[float]) -> Optional[float]:
    """The earliest of the deadlines that are set (None: nothing to wake for but events)."""
    times = [deadline for deadline in deadlines if deadline is not None]
    return min(times) if times else None


def wait_timeout(deadline: Optional[float], now: float, slack: float = TIMER_SLACK_S) -> Optional[float]:
    """Seconds for ``select`` to wait for ``deadline`` from ``now`` (None: until an event)."""
    if deadline is None:
        return None
    return max(0.0, deadline - now) + slack


class Waker:
    """A self-pipe: ``wake()`` from any thread ends the link thread's ``wait`` at once.

    Wakes coalesce: at most one byte is pending, so a burst of commands costs one wake-up
    and the pipe never fills.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._lock = threading.Lock()
        self._pending = False
        self.wakes = 0  # wake-ups actually written (for tests and diagnostics)

    def wake(self) -> None:
        with self._lock:
            if self._pending or self._write_fd < 0:
                return
            self._pending = True
            self.wakes += 1
        try:
            os.write(self._write_fd, b'!')
        except (BlockingIOError, OSError):
            pass  # full (cannot be: one byte at most) or closed: the thread is waking anyway

    def wait(self, fds: Iterable[int], timeout: Optional[float]) -> list[int]:
        """Block until one of ``fds`` is readable, ``wake()`` was called, or ``timeout`` (s)
        passed; return the readable ``fds`` (not the pipe, which is drained here).
        """
        poller = select.poll()  # not select(): no FD_SETSIZE limit in a process with many fds
        for fd in (self._read_fd, *fds):
            poller.register(fd, select.POLLIN)
        # ms, rounded up; hang-ups and errors count as readable: the read then finds them
        readable = [fd for fd, _ in poller.poll(None if timeout is None else timeout * 1000)]
        if self._read_fd in readable:
            with self._lock:
                self._pending = False
                try:
                    os.read(self._read_fd, 64)
                except BlockingIOError:
                    pass
        return [fd for fd in readable if fd != self._read_fd]

    def close(self) -> None:
        with self._lock:
            read_fd, write_fd = self._read_fd, self._write_fd
            self._read_fd = self._write_fd = -1
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
