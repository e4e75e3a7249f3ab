"""Processes that never outlive their parent (Linux ``prctl(PR_SET_PDEATHSIG)``).

Two ways in:

- ``preexec(sig)``: a ``preexec_fn`` for ``subprocess.Popen``; the child gets ``sig`` when
  its parent goes away, and kills itself at once if the parent was already gone between
  fork and ``prctl``.
- ``die_with_parent(sig, parent_pid)``: the same from inside a program that some launcher
  started (``spin_node`` calls it with the pid ``ros2 launch`` passes in ``HAVATAR_PARENT_PID``).

Caveats, all from the kernel:

- The signal is sent when the *thread* that forked the child ends, not the process. Spawn
  with ``preexec`` only from a thread that lives as long as the child should (the main
  thread, or a thread that waits for its child before it returns); each call site says why
  its thread qualifies.
- The setting survives ``execve`` (not of set-uid/set-gid or file-capability programs) and is
  not inherited by ``fork``: every generation (demo -> node -> ffmpeg) sets its own.

Off Linux (or without a loadable libc) everything here is a no-op.
"""
from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from typing import Callable, Optional

PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = 'HAVATAR_PARENT_PID'  # set by a launcher for spin_node's race check

Prctl = Callable[[int, int, int, int, int], int]


@functools.lru_cache(maxsize=1)
def _prctl() -> Optional[Prctl]:
    """Libc's ``prctl``, loaded once in the parent (a forked child must not load anything)."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl  # type: ignore[no-any-return]


def supported() -> bool:
    """Whether parent-death signals work here (Linux with libc)."""
    return _prctl() is not None


def _set_death_signal(prctl: Prctl, sig: int) -> None:
    if prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f'prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}')


def die_with_parent(sig: int = signal.SIGTERM, parent_pid: Optional[int] = None) -> None:
    """Get ``sig`` when this process's parent (the thread that forked it) ends.

    If ``parent_pid`` is given and is no longer the parent (it died before this call and the
    process was adopted by init or a subreaper), send ``sig`` to this process now. Without
    ``parent_pid`` there is no such check: a parent pid of 1 may be a container's launcher.
    """
    prctl = _prctl()
    if prctl is None:
        return
    _set_death_signal(prctl, sig)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


def inherited_parent_pid() -> Optional[int]:
    """The pid a launcher put in ``HAVATAR_PARENT_PID``, removed so our own children never see it."""
    value = os.environ.pop(PARENT_PID_ENV, '')
    return int(value) if value.isdigit() else None


def preexec(sig: int = signal.SIGTERM, parent_pid: Optional[int] = None) -> Optional[Callable[[], None]]:
    """A ``preexec_fn``: the child gets ``sig`` when the calling thread ends; None off Linux.

    ``parent_pid`` defaults to this process. The returned function runs in the forked child
    before ``exec``; it uses only what is prepared here (no imports, no locks).
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid() if parent_pid is None else parent_pid

    def child() -> None:
        # A Python handler inherited from the parent would swallow the signal until exec
        # (which resets it to the default anyway): reset it now.
        if callable(signal.getsignal(sig)):
            signal.signal(sig, signal.SIG_DFL)
        _set_death_signal(prctl, sig)
        if os.getppid() != parent:  # the parent died before prctl: nobody will signal us
            os.kill(os.getpid(), sig)
            os._exit(128 + sig)  # sig blocked or ignored: never run the program anyway
    return child
