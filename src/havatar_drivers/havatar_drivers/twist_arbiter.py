"""twist_mux's arbitration between velocity sources (pure: the caller supplies the time).

Same rules as ros-teleop/twist_mux: each source (``topics.<name>``: topic, timeout,
priority 0..255) is eligible while its last message is younger than its timeout; a lock
(``locks.<name>``, a ``std_msgs/Bool`` topic) is engaged while its last message says true,
or, with a timeout > 0, while its publisher has been silent that long (also before it first
spoke); an engaged lock masks every source of lower priority. A message is forwarded when
its source is the highest-priority eligible one, so nothing is forwarded that no source is
saying now.

One addition for safety (twist_mux leaves this to the base's own timeout): when the source
whose twist went out last expires or is masked by a lock, ``update`` answers a zero twist,
once, so the robot stops at once instead of after the motor's deadman.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

Twist = tuple[float, float]  # linear x (m/s), angular z (rad/s)
ZERO: Twist = (0.0, 0.0)
PRIORITY_RANGE = (0, 255)


@dataclass(frozen=True)
class Input:
    """A velocity source (``topics.<name>``) or a lock (``locks.<name>``)."""

    name: str
    topic: str
    timeout: float  # s; for a lock 0 = no heartbeat expected
    priority: int


def parse_inputs(kind: str, flat: Mapping[str, Any]) -> list[Input]:
    """Inputs from flat parameters ``<kind>.<name>.topic|timeout|priority``, in name order.

    Raises ValueError naming the parameter that is missing or out of range.
    """
    grouped: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        head, _, rest = key.partition('.')
        name, _, field_name = rest.rpartition('.')
        if head != kind or not name:
            continue
        if field_name not in ('topic', 'timeout', 'priority'):
            raise ValueError(f'unknown parameter {key} (a {kind} entry has topic, timeout, priority)')
        grouped.setdefault(name, {})[field_name] = value
    inputs = []
    for name in sorted(grouped):
        entry = grouped[name]
        for field_name in ('topic', 'timeout', 'priority'):
            if field_name not in entry:
                raise ValueError(f'parameter {kind}.{name}.{field_name} is missing')
        topic, timeout, priority = entry['topic'], entry['timeout'], entry['priority']
        if not isinstance(topic, str) or not topic:
            raise ValueError(f'parameter {kind}.{name}.topic must be a topic name')
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
                or timeout < 0 or (kind == 'topics' and timeout == 0):
            raise ValueError(f'parameter {kind}.{name}.timeout={timeout!r} must be a number of seconds '
                             + ('> 0' if kind == 'topics' else '>= 0 (0 = no heartbeat)'))
        if isinstance(priority, bool) or not isinstance(priority, int) \
                or not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            raise ValueError(f'parameter {kind}.{name}.priority={priority!r} is out of range '
                             f'[{PRIORITY_RANGE[0]}, {PRIORITY_RANGE[1]}]')
        inputs.append(Input(name, topic, float(timeout), priority))
    return inputs


class TwistArbiter:
    """Decides what goes out on ``cmd_vel``; every method returns the twist to publish, if any."""

    def __init__(self, topics: list[Input], locks: list[Input]) -> None:
        if not topics:
            raise ValueError('no velocity sources (parameters topics.<name>.topic|timeout|priority)')
        self.topics = {t.name: t for t in topics}
        self.locks = {lk.name: lk for lk in locks}
        self._heard: dict[str, float] = {}      # source or lock name -> when it last spoke
        self._locked: dict[str, bool] = {}      # lock name -> its last value
        self._active: Optional[str] = None      # the source whose twist went out last

    # -- state
    def _expired(self, item: Input, now: float) -> bool:
        heard = self._heard.get(item.name)
        if heard is None:
            return item.timeout > 0 or item.name in self.topics
        return item.timeout > 0 and now - heard > item.timeout

    def lock_priority(self, now: float) -> int:
        """The highest priority of the engaged locks (0: none)."""
        return max((lk.priority for lk in self.locks.values()
                    if self._locked.get(lk.name, False) or self._expired(lk, now)), default=0)

    def engaged_locks(self, now: float) -> list[str]:
        return [lk.name for lk in self.locks.values() if self._locked.get(lk.name, False) or self._expired(lk, now)]

    def winner(self, now: float) -> Optional[str]:
        """The highest-priority source that is neither expired nor masked (first listed on a tie)."""
        floor = self.lock_priority(now)
        best: Optional[Input] = None
        for source in self.topics.values():
            if not self._expired(source, now) and source.priority >= floor \
                    and (best is None or source.priority > best.priority):
                best = source
        return best.name if best else None

    @property
    def active(self) -> Optional[str]:
        """The source whose twist went out last, until it expires or is masked."""
        return self._active

    # -- events
    def twist(self, name: str, twist: Twist, now: float) -> Optional[Twist]:
        """A message of source ``name``: the twist to forward, or None (another source wins)."""
        self._heard[name] = now
        stop = self.update(now)
        if self.winner(now) == name:
            self._active = name
            return twist
        return stop

    def lock(self, name: str, engaged: bool, now: float) -> Optional[Twist]:
        """A message of lock ``name``: a zero twist when it masks the active source."""
        self._heard[name] = now
        self._locked[name] = bool(engaged)
        return self.update(now)

    def update(self, now: float) -> Optional[Twist]:
        """Call periodically: a zero twist, once, when the active source expired or is masked."""
        if self._active is None:
            return None
        source = self.topics[self._active]
        if self._expired(source, now) or source.priority < self.lock_priority(now):
            self._active = None
            return ZERO
        return None
