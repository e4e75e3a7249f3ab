"""The ESP32 motor firmware's serial protocol: command lines out, JSON reply lines in.

Pure code (no serial port, no ROS). Both firmware dialects on users' robots are spoken:
``v1`` (TB6612FNG + INA219: acks with voltage, telemetry every 500 ms, no watchdog) and
``v2`` (ESP32_CRAWLER: blocks ~50 ms after PWM and ~300 ms after STOP, 2 s watchdog).
The wire contract is written down in ``doc/ESP32_PROTOCOL.md``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional, Union

PWM_LIMIT = 255


class Dialect(str, Enum):
    V1 = 'v1'
    V2 = 'v2'


@dataclass(frozen=True)
class Timing:
    """How fast a firmware takes commands and when it needs to hear from us."""

    after_pwm: float        # s to wait after a PWM line before the next line
    after_stop: float       # s to wait after STOP
    keepalive: float | None  # resend the current command this often while moving


# v2 blocks 50 ms after PWM (LED blink) and 300 ms after STOP; its watchdog fires after 2 s
# of silence while moving, so a keep-alive every 0.5 s leaves three chances to spare.
# v1 reads as fast as it can; 50 ms between lines is what the original software kept.
TIMINGS: dict[Optional[Dialect], Timing] = {
    Dialect.V1: Timing(after_pwm=0.05, after_stop=0.05, keepalive=None),
    Dialect.V2: Timing(after_pwm=0.06, after_stop=0.32, keepalive=0.5),
    None: Timing(after_pwm=0.06, after_stop=0.32, keepalive=0.5),  # unknown: safe for both
}


def clamp_pwm(value: int) -> int:
    return max(-PWM_LIMIT, min(PWM_LIMIT, int(value)))


def pwm_line(left: int, right: int) -> bytes:
    return f'PWM {clamp_pwm(left)} {clamp_pwm(right)}\n'.encode('ascii')


STOP_LINE = b'STOP\n'
STATUS_LINE = b'STATUS\n'


# --- replies -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Boot:
    """The firmware (re)started: v1 boot line, or v2 ``ready``/``initialized``."""

    dialect: Dialect
    ready: bool              # False for v2 'ready' (still initializing), True when it takes commands
    detail: str = ''


@dataclass(frozen=True)
class Ack:
    """A command was accepted; ``left``/``right`` are the speeds now applied."""

    command: str
    dialect: Dialect
    left: Optional[int] = None
    right: Optional[int] = None
    voltage: Optional[float] = None


@dataclass(frozen=True)
class Telemetry:
    """v1 battery telemetry (the STATUS reply, also sent unprompted every 500 ms)."""

    voltage: float
    current_ma: Optional[float]
    uptime_ms: Optional[int]


@dataclass(frozen=True)
class StatusV2:
    left: int
    right: int
    uptime_ms: int
    last_cmd_ms: int
    watchdog_ms: int


@dataclass(frozen=True)
class Heartbeat:
    left: int
    right: int


@dataclass(frozen=True)
class Emergency:
    """v2 watchdog (or other) emergency stop."""

    reason: str


@dataclass(frozen=True)
class FirmwareError:
    error: str
    dialect: Dialect
    detail: str = ''


@dataclass(frozen=True)
class Info:
    text: str


@dataclass(frozen=True)
class Unparsed:
    """A line that is not a reply we know (garbage, a partial line, a TEST print)."""

    raw: str


Reply = Union[Boot, Ack, Telemetry, StatusV2, Heartbeat, Emergency, FirmwareError, Info, Unparsed]


def _int(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _float(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_reply(line: Union[bytes, str]) -> Reply:
    """Classify one reply line. Never raises: unknown input becomes ``Unparsed``."""
    text = line.decode('utf-8', 'replace') if isinstance(line, bytes) else line
    text = text.strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return Unparsed(text)
    if not isinstance(data, dict):
        return Unparsed(text)
    try:
        return _classify(data, text)
    except (TypeError, ValueError, OverflowError):
        return Unparsed(text)


def _classify(d: dict[str, Any], text: str) -> Reply:
    # v1
    if 'boot' in d:
        return Boot(Dialect.V1, ready=True, detail=f'ina219={d.get("ina219")}')
    if 'ack' in d:
        return Ack(str(d['ack']), Dialect.V1, _int(d.get('L')), _int(d.get('R')),
                   _float(d.get('voltage')))
    if d.get('err') is not None:
        return FirmwareError(str(d['err']), Dialect.V1)
    if d.get('ok') is True and 'voltage' in d and 'status' not in d:
        voltage = _float(d['voltage'])
        if voltage is not None:
            return Telemetry(voltage, _float(d.get('current')), _int(d.get('ts')))
    # v2
    status = d.get('status')
    if status == 'ready':
        return Boot(Dialect.V2, ready=False, detail=str(d.get('version', '')))
    if status == 'initialized':
        return Boot(Dialect.V2, ready=True)
    if isinstance(status, dict):
        return StatusV2(_int(status.get('left')) or 0, _int(status.get('right')) or 0,
                        _int(status.get('uptime')) or 0, _int(status.get('last_cmd')) or 0,
                        _int(status.get('watchdog_timeout')) or 0)
    if d.get('ok') is True and 'cmd' in d:
        return Ack(str(d['cmd']), Dialect.V2, _int(d.get('left')), _int(d.get('right')))
    if d.get('ok') is False:
        return FirmwareError(str(d.get('error', 'unknown')), Dialect.V2,
                             str(d.get('received', d.get('expected', d.get('range', '')))))
    if d.get('emergency'):
        return Emergency(str(d.get('reason', '')))
    if d.get('heartbeat'):
        return Heartbeat(_int(d.get('left')) or 0, _int(d.get('right')) or 0)
    if 'info' in d:
        return Info(str(d['info']))
    return Unparsed(text)


def dialect_of(reply: Reply) -> Optional[Dialect]:
    """The dialect a reply proves, or None when it could come from either."""
    if isinstance(reply, (Boot, Ack, FirmwareError)):
        return reply.dialect
    if isinstance(reply, Telemetry):
        return Dialect.V1
    if isinstance(reply, (StatusV2, Heartbeat, Emergency)):
        return Dialect.V2
    return None


def parse_dialect(name: str) -> Optional[Dialect]:
    """``'auto'`` -> None, ``'v1'``/``'v2'`` -> the dialect; anything else raises ValueError."""
    if name == 'auto':
        return None
    return Dialect(name)
