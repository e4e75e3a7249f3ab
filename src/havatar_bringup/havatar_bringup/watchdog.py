"""The robot's watchdog (pure core, plus two small OS helpers): which node is down, and why.

A node is *down* when its process has exited, is stopped (SIGSTOP, seen in ``/proc``
within one poll) or has stopped publishing its heartbeat, its ``/diagnostics`` status
``<node>: ...``, for ``hang_timeout`` seconds. The heartbeat is armed by a node's first
status, so a node that publishes none (or is still starting) is never called hung by it.
``run_robot`` SIGKILLs a hung node, respawns it and reports every restart on
``/diagnostics`` (status ``run_robot: watchdog``), which the relay forwards to the web UI.

The motor node is special: v1 firmware has no watchdog of its own and keeps its last PWM,
so while the motor node is down the watchdog writes ``STOP`` to the serial port the node
last reported (``stop_motors``), at once, before the node is respawned.
"""
from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from typing import Optional

HANG_TIMEOUT_S = 5.0      # no heartbeat for this long: hung (nodes publish every 1 s)
STOP_LINE = b'STOP\n'     # as havatar_drivers.esp32.protocol.STOP_LINE (both dialects)


@dataclass
class Restart:
    """One restart the watchdog ordered."""

    node: str
    reason: str          # 'exited (-9)', 'stopped', 'sent no heartbeat for 5.0 s'
    wall_time: float     # time.time(), for people
    count: int           # restarts of this node so far


@dataclass
class Watchdog:
    """Heartbeats and restarts per node; time is passed in (monotonic seconds)."""

    hang_timeout: float = HANG_TIMEOUT_S
    beats: dict[str, float] = field(default_factory=dict)
    starts: dict[str, float] = field(default_factory=dict)
    restarts: dict[str, Restart] = field(default_factory=dict)

    def beat(self, node: str, now: float, sent: float = float('inf')) -> None:
        """A heartbeat received at ``now``, sent at wall time ``sent`` (its header stamp):
        one sent before the node was (re)started came from the process before.
        """
        if sent >= self.starts.get(node, float('-inf')):
            self.beats[node] = now

    def started(self, node: str, wall_time: float) -> None:
        """A (re)started node: its heartbeat is armed again by its first status."""
        self.starts[node] = wall_time
        self.beats.pop(node, None)

    def silent(self, node: str, now: float) -> Optional[float]:
        """Seconds since the node's last heartbeat when longer than ``hang_timeout``."""
        last = self.beats.get(node)
        if last is None or now - last < self.hang_timeout:
            return None
        return now - last

    def restarted(self, node: str, reason: str, wall_time: float) -> Restart:
        previous = self.restarts.get(node)
        restart = Restart(node, reason, wall_time, previous.count + 1 if previous else 1)
        self.restarts[node] = restart
        return restart

    def summary(self) -> tuple[str, dict[str, str]]:
        """The status message (the latest restart) and one value per restarted node."""
        if not self.restarts:
            return 'no restarts', {}
        latest = max(self.restarts.values(), key=lambda r: r.wall_time)
        values = {r.node: f'{r.count} restart(s), last at {stamp(r.wall_time)}: {r.reason}'
                  for r in self.restarts.values()}
        return f'{latest.node} restarted at {stamp(latest.wall_time)} ({latest.reason})', values


def stamp(wall_time: float) -> str:
    return time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(wall_time))


def process_stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP, SIGTSTP) or traced: state T or t in /proc."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as stat:
            fields = stat.read().rsplit(b')', 1)[-1].split()
    except OSError:
        return False
    return bool(fields) and fields[0] in (b'T', b't')


def stop_motors(port: str) -> Optional[str]:
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
