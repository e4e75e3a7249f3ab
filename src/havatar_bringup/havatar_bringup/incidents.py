"""Why the robot stopped, and what it heard before (pure: the caller supplies the time).

``StopDetector`` turns what the nodes already report into stop reasons: the motor node's
``ESP32 link`` diagnostics counters (deadman stops, firmware watchdog stops and resets,
serial errors), the relay node's ``relay`` diagnostics (stale commands dropped, the cloud
relay lost) and the twist_mux lock topics. A stop counts only while the robot drives: a
counter's increase if the wheels turned (a wheel command not zero then or within
``moving_window`` seconds before) when the counter was last reported, a lock or a lost relay
if they turn now. The driver's own stop is a zero ``cmd_vel`` and is never a reason, nor is
the deadman that follows it: the motor node counts only deadman stops of a motion the driver
still wanted. ``RecentMessages`` keeps the last seconds of serialized messages;
``IncidentWindow`` gathers the reasons that come close together into one incident, written
once its tail (``post_seconds``) is recorded too.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

DEADMAN = 'deadman'
FIRMWARE_WATCHDOG = 'firmware_watchdog'
FIRMWARE_RESET = 'firmware_reset'
SERIAL_LOSS = 'serial_loss'
EMERGENCY_LOCK = 'emergency_lock'
RELAY_LOSS = 'relay_loss'
STALE_COMMANDS = 'stale_commands'
REASONS = (DEADMAN, FIRMWARE_WATCHDOG, FIRMWARE_RESET, SERIAL_LOSS, EMERGENCY_LOCK, RELAY_LOSS, STALE_COMMANDS)

# (status name suffix, diagnostics key) -> the reason an increase of that counter means
COUNTERS: dict[tuple[str, str], str] = {
    (': ESP32 link', 'deadman_stops'): DEADMAN,
    (': ESP32 link', 'firmware_emergency_stops'): FIRMWARE_WATCHDOG,
    (': ESP32 link', 'firmware_resets'): FIRMWARE_RESET,
    (': ESP32 link', 'serial_errors'): SERIAL_LOSS,
    (': relay', 'dropped_stale_commands'): STALE_COMMANDS,
}
RELAY_STATUS = ': relay'


@dataclass(frozen=True)
class Stop:
    """A reason the robot stopped, when it was seen (ns) and what said so."""

    reason: str
    time_ns: int
    detail: str


class StopDetector:
    """Stop reasons from diagnostics, locks and wheel commands."""

    def __init__(self, moving_window: float) -> None:
        self.moving_window_ns = int(moving_window * 1e9)
        self._counters: dict[tuple[str, str], tuple[int, bool]] = {}  # value, moving when reported
        self._cloud: dict[str, str] = {}
        self._locks: dict[str, bool] = {}
        self._wheels_moving = False
        self._last_moving_ns: Optional[int] = None
        self.ignored: list[Stop] = []  # the last diagnostics' reasons, ignored as the robot was still
        self.nodes: set[str] = set()  # nodes whose diagnostics were seen

    def wheels(self, left: int, right: int, now_ns: int) -> None:
        """A wheel command the motor node sent."""
        self._wheels_moving = bool(left or right)
        if self._wheels_moving:
            self._last_moving_ns = now_ns

    def moving(self, now_ns: int) -> bool:
        return self._wheels_moving or (
            self._last_moving_ns is not None and now_ns - self._last_moving_ns <= self.moving_window_ns)

    def lock(self, topic: str, engaged: bool, now_ns: int) -> list[Stop]:
        """A twist_mux lock message: engaging it while moving is a stop."""
        was = self._locks.get(topic, False)
        self._locks[topic] = engaged
        if engaged and not was and self.moving(now_ns):
            return [Stop(EMERGENCY_LOCK, now_ns, f'lock {topic} engaged')]
        return []

    def diagnostics(self, statuses: Iterable[tuple[str, Mapping[str, str]]], now_ns: int) -> list[Stop]:
        """One /diagnostics message as (status name, values)."""
        stops: list[Stop] = []
        for name, values in statuses:
            self.nodes.add(name.split(': ', 1)[0])
            for (suffix, key), reason in COUNTERS.items():
                if name.endswith(suffix) and key in values:
                    stops += self._counter(name, key, values[key], reason, now_ns)
            if name.endswith(RELAY_STATUS) and 'cloud_relay' in values:
                before, now = self._cloud.get(name), values['cloud_relay']
                self._cloud[name] = now
                if before == 'connected' and now == 'disconnected':
                    stops.append(Stop(RELAY_LOSS, now_ns, f'{name}: cloud relay disconnected'))
        self.ignored = [s for s in stops if not self._counts(s, now_ns)]
        return [s for s in stops if self._counts(s, now_ns)]

    def _counts(self, stop: Stop, now_ns: int) -> bool:
        return stop.reason != RELAY_LOSS or self.moving(now_ns)

    def _counter(self, name: str, key: str, text: str, reason: str, now_ns: int) -> list[Stop]:
        """A counter's increase is a stop if the wheels moved when it was last reported: the
        stop happened since, while driving. A v2 firmware's first boot line counts as a reset
        but stops nothing, even when the motor node was already sending commands the booting
        firmware ignored: a reset counts from the second boot line a motor node sees.
        """
        try:
            value = int(text)
        except ValueError:
            return []
        before = self._counters.get((name, key))
        # the first value, or a restarted node's, is a baseline
        self._counters[(name, key)] = (value, self.moving(now_ns))
        first_boot = reason == FIRMWARE_RESET and before is not None and before[0] == 0
        if before is not None and value > before[0] and before[1] and not first_boot:
            return [Stop(reason, now_ns, f'{name}: {key} {before[0]} -> {value}')]
        return []


@dataclass(frozen=True)
class Record:
    """One message as it arrived: topic, type (pkg/msg/Type), receive time (ns), CDR bytes."""

    topic: str
    type_name: str
    time_ns: int
    data: bytes


class RecentMessages:
    """The last ``keep_seconds`` of messages, and at most ``max_bytes`` of them."""

    def __init__(self, keep_seconds: float, max_bytes: int) -> None:
        self.keep_ns = int(keep_seconds * 1e9)
        self.max_bytes = max_bytes
        self._records: collections.deque[Record] = collections.deque()
        self.bytes = 0

    def add(self, record: Record) -> None:
        self._records.append(record)
        self.bytes += len(record.data)
        self.prune(record.time_ns)

    def __len__(self) -> int:
        return len(self._records)

    def prune(self, now_ns: int) -> None:
        while self._records and (now_ns - self._records[0].time_ns > self.keep_ns or self.bytes > self.max_bytes):
            self.bytes -= len(self._records.popleft().data)

    def between(self, start_ns: int, end_ns: int) -> list[Record]:
        return [r for r in self._records if start_ns <= r.time_ns <= end_ns]


@dataclass
class IncidentWindow:
    """Reasons close together: one incident, due once ``post_ns`` after the first passed."""

    post_ns: int
    stops: list[Stop] = field(default_factory=list)

    def add(self, stops: list[Stop]) -> None:
        self.stops += stops

    @property
    def open(self) -> bool:
        return bool(self.stops)

    def due(self, now_ns: int) -> bool:
        return self.open and now_ns >= self.stops[0].time_ns + self.post_ns

    def take(self) -> list[Stop]:
        stops, self.stops = self.stops, []
        return stops


def reasons(stops: list[Stop]) -> list[str]:
    """The distinct reasons, in the order they were seen."""
    return list(dict.fromkeys(s.reason for s in stops))
