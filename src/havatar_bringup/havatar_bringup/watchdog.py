"""The robot's watchdog (pure core; its OS helpers are motor_guard's): which node is down, and why.

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

import time
from dataclasses import dataclass, field
from typing import Optional

# the OS helpers motor_guard uses too: STOP written to a port without blocking, /proc state
from havatar_drivers.esp32.guard import process_stopped, write_stop as stop_motors

__all__ = ['HANG_TIMEOUT_S', 'Restart', 'Watchdog', 'process_stopped', 'stamp', 'stop_motors']

HANG_TIMEOUT_S = 5.0      # no heartbeat for this long: hung (nodes publish every 1 s)


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
