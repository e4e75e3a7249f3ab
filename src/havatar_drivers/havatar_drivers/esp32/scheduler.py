"""Decides which line to send to the firmware and when (pure: the caller supplies the time).

The firmware takes one line at a time and v2 stops reading for ~50 ms after each PWM, so
lines sent faster than that pile up in its buffer and the robot lags behind the operator.
The scheduler therefore holds at most one pending target (the newest), sends it only when
the firmware is ready for a line, sends nothing when nothing changed, and repeats the
current speed as a keep-alive inside the v2 watchdog while moving.
"""
from __future__ import annotations

from typing import Optional

from .protocol import STOP_LINE, TIMINGS, Dialect, Timing, clamp_pwm, pwm_line

Wheels = tuple[int, int]
STOPPED: Wheels = (0, 0)


class CommandScheduler:
    """Turns a stream of wheel targets into the fewest lines the firmware can keep up with."""

    def __init__(self, dialect: Optional[Dialect] = None) -> None:
        self.timing: Timing = TIMINGS[dialect]
        self.sent: Optional[Wheels] = None  # unknown until the first line after connecting
        self._ready_at = 0.0
        self._last_send = float('-inf')

    def set_dialect(self, dialect: Optional[Dialect]) -> None:
        self.timing = TIMINGS[dialect]

    def reset(self) -> None:
        """New connection: the firmware's state is unknown, so the next line is a STOP.

        (A v1 board powered on its own keeps its last speed across a USB glitch.)
        """
        self.sent = None
        self._ready_at = 0.0

    def firmware_stopped(self) -> None:
        """The firmware stopped the motors itself (reboot, watchdog)."""
        self.sent = STOPPED

    def next_line(self, target: Wheels, now: float) -> Optional[bytes]:
        """The line to write now for ``target``, or None when there is nothing to send yet."""
        if now < self._ready_at:
            return None
        target = (clamp_pwm(target[0]), clamp_pwm(target[1]))
        if self.sent is None or target == STOPPED:
            if self.sent == STOPPED:
                return None
            return self._mark(STOP_LINE, STOPPED, now, self.timing.after_stop)
        keepalive = self.timing.keepalive
        if target != self.sent or (keepalive is not None and now - self._last_send >= keepalive):
            return self._mark(pwm_line(*target), target, now, self.timing.after_pwm)
        return None

    def due(self, target: Wheels, now: float) -> Optional[float]:
        """When ``next_line`` would send something for ``target`` if it stays as it is:
        ``now`` or later, or None when nothing is due (stopped, or moving without keep-alive).
        """
        target = (clamp_pwm(target[0]), clamp_pwm(target[1]))
        if self.sent is None or target == STOPPED:
            return None if self.sent == STOPPED else max(now, self._ready_at)
        if target != self.sent:
            return max(now, self._ready_at)
        keepalive = self.timing.keepalive
        if keepalive is None:
            return None
        return max(now, self._ready_at, self._last_send + keepalive)

    @property
    def ready_at(self) -> float:
        """When the firmware takes its next line."""
        return self._ready_at

    def _mark(self, line: bytes, wheels: Wheels, now: float, busy: float) -> bytes:
        self.sent = wheels
        self._last_send = now
        self._ready_at = now + busy
        return line
