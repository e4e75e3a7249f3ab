"""The ESP32 motor firmware as a model (pure: no terminal, no clock of its own).

``Firmware`` answers command lines of either dialect exactly as the firmware on users'
robots does (see ``doc/ESP32_PROTOCOL.md``) and says how long it then blocks; the caller
(``simulator.Simulator``) passes the time and owns the serial port.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from .protocol import PWM_LIMIT, clamp_pwm

V2_BOOT_READY_S = 2.0
V2_INIT_S = 1.2
V2_PWM_BLOCK_S = 0.05
V2_STOP_BLOCK_S = 0.3
V2_WATCHDOG_S = 2.0
V2_WATCHDOG_BLOCK_S = 0.9
V2_HEARTBEAT_S = 1.0
V1_TELEMETRY_S = 0.5
V2_TEST_STEPS = ('FORWARD', 'BACKWARD', 'LEFT', 'RIGHT', 'STOP')
BATTERY_FULL_V = 8.4
BATTERY_DRAIN_V_PER_S = 0.0005


@dataclass
class Motors:
    left: int = 0
    right: int = 0

    @property
    def moving(self) -> bool:
        return self.left != 0 or self.right != 0


class Firmware:
    """One firmware's behaviour: ``handle`` a line, ``tick`` its periodic work.

    Both return the lines to write and how long the firmware then blocks. Time is passed
    in (seconds, monotonic) so unit tests can drive it without waiting.
    """

    def __init__(self, dialect: str, now: float, battery_v: float = BATTERY_FULL_V) -> None:
        self.dialect = dialect
        self.motors = Motors()
        self.set_battery(battery_v, now)
        self.boot(now)

    def boot(self, now: float) -> tuple[list[str], float]:
        """Power on or reset; returns the boot output and the time spent booting."""
        self.motors = Motors()
        self.boot_time = now
        self.last_cmd = now
        self.last_periodic = now
        self.boot_stage = 2 if self.dialect == 'v1' else 0  # v2: 0 silent, 1 ready, 2 running
        if self.dialect == 'v1':
            return ['{"boot":true,"ina219":true}'], 0.0
        return [], 0.0  # v2 prints its boot lines from tick(), after the boot delays

    # -- helpers
    def uptime_ms(self, now: float) -> int:
        return int((now - self.boot_time) * 1000)

    def set_battery(self, volts: float, now: float) -> None:
        self.battery_v = volts
        self.battery_since = now

    def voltage(self, now: float) -> float:
        drained = (now - self.battery_since) * BATTERY_DRAIN_V_PER_S
        return round(max(6.0, self.battery_v - drained), 3)

    def booting(self) -> bool:
        """True while the firmware is still in setup() and reads no commands."""
        return self.boot_stage < 2

    # -- commands
    def handle(self, line: str, now: float) -> tuple[list[str], float]:
        self.previous_cmd, self.last_cmd = self.last_cmd, now
        return (self._v1 if self.dialect == 'v1' else self._v2)(line.strip(), now)

    def _v1(self, line: str, now: float) -> tuple[list[str], float]:
        v = self.voltage(now)
        parts = line.split()
        if len(parts) == 3 and parts[0] == 'PWM':
            try:
                left, right = (clamp_pwm(int(p)) for p in parts[1:])
            except ValueError:
                return [compact_json({'err': 'bad_cmd', 'voltage': v})], 0.0
            self.motors = Motors(left, right)
            return [compact_json({'ack': 'PWM', 'L': left, 'R': right, 'voltage': v})], 0.0
        if line == 'STOP':
            self.motors = Motors()
            return [compact_json({'ack': 'STOP', 'voltage': v})], 0.0
        if line == 'STATUS':
            return [self._v1_status(now)], 0.0
        return [compact_json({'err': 'bad_cmd', 'voltage': v})], 0.0

    def _v1_status(self, now: float) -> str:
        current = 120.0 + (abs(self.motors.left) + abs(self.motors.right)) * 2.0
        return compact_json({'ok': True, 'voltage': self.voltage(now), 'current': current,
                   'ts': self.uptime_ms(now)})

    def _v2(self, line: str, now: float) -> tuple[list[str], float]:
        up = self.uptime_ms(now)
        if line.startswith('PWM') or line.startswith('MOTOR:'):
            speeds = _v2_speeds(line)
            if speeds is None:
                return [compact_json({'ok': False, 'error': 'invalid_pwm_format',
                            'expected': 'PWM left right'})], 0.0
            if any(abs(s) > PWM_LIMIT for s in speeds):
                return [compact_json({'ok': False, 'error': 'invalid_speed_range',
                            'range': '-255 to +255'})], 0.0
            self.motors = Motors(*speeds)
            return [compact_json({'ok': True, 'cmd': 'PWM', 'left': speeds[0], 'right': speeds[1],
                        'uptime': up})], V2_PWM_BLOCK_S
        if line == 'STOP':
            self.motors = Motors()
            return [compact_json({'ok': True, 'cmd': 'STOP', 'reason': 'command', 'uptime': up})], V2_STOP_BLOCK_S
        if line == 'STATUS':
            return [compact_json({'ok': True, 'status': {
                'left': self.motors.left, 'right': self.motors.right, 'uptime': up,
                'last_cmd': int((now - self.previous_cmd) * 1000),
                'watchdog_timeout': int(V2_WATCHDOG_S * 1000)}})], 0.0
        if line == 'TEST':
            self.motors = Motors()
            return [f'TEST:{step}' for step in V2_TEST_STEPS], 4.5
        return [compact_json({'ok': False, 'error': 'unknown_command', 'received': line})], 0.0

    # -- periodic work of the firmware's loop
    def tick(self, now: float) -> tuple[list[str], float]:
        if self.dialect == 'v1':
            if now - self.last_periodic >= V1_TELEMETRY_S:
                self.last_periodic = now
                return [self._v1_status(now)], 0.0
            return [], 0.0
        return self._v2_tick(now)

    def _v2_tick(self, now: float) -> tuple[list[str], float]:
        since_boot = now - self.boot_time
        out: list[str] = []
        if self.boot_stage == 0 and since_boot >= V2_BOOT_READY_S:
            self.boot_stage = 1
            out += [compact_json({'status': 'ready', 'version': '2.0', 'firmware': 'ESP32_CRAWLER'}),
                    compact_json({'info': 'Commands: PWM <left> <right>, STOP, STATUS, TEST'}),
                    compact_json({'info': 'Speed range: -255 to +255'}),
                    compact_json({'info': 'Watchdog: 2000ms'})]
        if self.boot_stage == 1 and since_boot >= V2_BOOT_READY_S + V2_INIT_S:
            self.boot_stage = 2
            self.last_cmd = self.last_periodic = now
            out.append(compact_json({'status': 'initialized', 'ok': True}))
        if self.boot_stage < 2:
            return out, 0.0
        block = 0.0
        if self.motors.moving and now - self.last_cmd >= V2_WATCHDOG_S:
            self.motors = Motors()
            out.append(compact_json({'emergency': True, 'reason': 'watchdog_timeout',
                           'uptime': self.uptime_ms(now)}))
            block = V2_WATCHDOG_BLOCK_S
        if self.motors.moving and now - self.last_periodic >= V2_HEARTBEAT_S:
            self.last_periodic = now
            out.append(compact_json({'heartbeat': True, 'left': self.motors.left,
                           'right': self.motors.right, 'uptime': self.uptime_ms(now)}))
        elif not self.motors.moving:
            self.last_periodic = now
        return out, block


def compact_json(obj: dict) -> str:
    return json.dumps(obj, separators=(',', ':'))


def _v2_speeds(line: str) -> Optional[tuple[int, int]]:
    try:
        if line.startswith('MOTOR:'):
            _, l_key, left, r_key, right = line.split(':')
            if (l_key, r_key) != ('L', 'R'):
                return None
        else:
            cmd, left, right = line.split()
            if cmd != 'PWM':
                return None
        return int(left), int(right)
    except ValueError:
        return None
