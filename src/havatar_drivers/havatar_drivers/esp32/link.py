"""The serial link to the ESP32: one thread that owns the port.

It finds and opens the port (by path, by ``/dev/serial/by-id`` name, or by scanning),
detects the firmware dialect, writes what the ``CommandScheduler`` decides for the
``DriveController``'s current wheel speeds, reads and parses replies, and reconnects when
the port returns. Any serial error stops the drive; closing sends STOP. The first port a
process opens gets STOP at once, before the firmware is identified: a motor node that was
just (re)started does not know what its predecessor left running (v1 firmware keeps its
last PWM).
"""
from __future__ import annotations

import glob
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

import serial

from ..drive_controller import DriveController
from .protocol import (STATUS_LINE, STOP_LINE, Ack, Boot, Dialect, Emergency, FirmwareError, Reply,
                       Unparsed, dialect_of, parse_reply)
from .scheduler import CommandScheduler
from .wakeup import TIMER_SLACK_S, Waker, earliest, wait_timeout

SCAN_PATTERNS = ('/dev/serial/by-id/*', '/dev/ttyUSB*', '/dev/ttyACM*', '/dev/ttyAMA*')
DEFAULT_BAUD = 115200
MAX_LINE_BYTES = 1024      # a longer line without a newline is garbage: dropped
READ_CHUNK_BYTES = 4096    # read per wake-up at most
LAST_REPLY_CHARS = 200     # of the last reply, kept for diagnostics
RAMP_RECHECK_S = 0.005     # while ramping and the wheels have not moved a PWM step yet
WRITE_TIMEOUT_S = 0.5      # a write blocked this long is a serial error
CLOSE_TIMEOUT_S = 2.0      # to wait for the link thread when closing
BOOT_GRACE_S = 0.3         # after opening, before the first probe: boot lines usually come first
PROBE_PERIOD_S = 1.0       # between STATUS probes while the dialect is unknown

class Logger(Protocol):
    """What the link logs through: an rclpy node logger or a ``logging.Logger``."""

    def info(self, message: str) -> Any: ...
    def warning(self, message: str) -> Any: ...
    def error(self, message: str) -> Any: ...


def port_candidates(spec: str) -> list[str]:
    """Ports to try for a ``serial_port`` setting: a path, a by-id name, or '' to scan."""
    if spec.startswith('/'):
        return [spec]
    if spec:
        return sorted(glob.glob(f'/dev/serial/by-id/*{glob.escape(spec)}*'))
    found: list[str] = []
    seen: set[str] = set()
    for pattern in SCAN_PATTERNS:
        for path in sorted(glob.glob(pattern)):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                found.append(path)
    return found


@dataclass
class LinkStats:
    """What the diagnostics report about the link."""

    state: str = 'disconnected'  # disconnected | detecting | connected
    port: str = ''
    dialect: Optional[Dialect] = None
    last_reply: str = ''
    last_reply_time: float = 0.0
    lines_sent: int = 0
    connects: int = 0
    serial_errors: int = 0
    firmware_errors: int = 0
    unparsed: int = 0
    resets: int = 0
    emergencies: int = 0
    last_error: str = ''
    wakeups: int = 0  # times the link thread woke while connected
    connect_attempts: int = 0


class SerialLink:
    """Drives the firmware from a ``DriveController`` on a thread of its own.

    ``on_reply(reply)``, ``on_sent(line, monotonic_time)`` and ``on_open(path)`` (a port was
    opened) are called from that thread.
    """

    def __init__(self, port: str, controller: DriveController, *, baud: int = DEFAULT_BAUD,
                 dialect: Optional[Dialect] = None, reconnect_period: float = 1.0,
                 detect_timeout: float = 4.0,
                 on_reply: Callable[[Reply], None] = lambda r: None,
                 on_sent: Callable[[bytes, float], None] = lambda line, t: None,
                 on_open: Callable[[str], None] = lambda path: None,
                 logger: Optional[Logger] = None) -> None:
        self.port_spec = port
        self.controller = controller
        self.baud = baud
        self.forced_dialect = dialect
        self.reconnect_period = reconnect_period
        self.detect_timeout = detect_timeout
        self.on_reply = on_reply
        self.on_sent = on_sent
        self.on_open = on_open
        self.log: Logger = logger or logging.getLogger(__name__)
        self.stats = LinkStats(dialect=dialect)
        self.scheduler = CommandScheduler(dialect)
        self._serial: Optional[serial.Serial] = None
        self._buffer = b''
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='esp32-link', daemon=True)
        self._connected_at = 0.0
        self._next_probe = 0.0
        self._waker = Waker()
        controller.listen(self._waker.wake)  # a new command wakes the thread at once

    # -- lifecycle
    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the thread, send STOP, and close the port."""
        self._stop.set()
        self._waker.wake()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._waker.close()
        self.controller.stop()
        if self._serial is not None:
            try:
                self._serial.write(STOP_LINE)
                self._serial.flush()
                self.stats.lines_sent += 1
                self.on_sent(STOP_LINE, time.monotonic())
            except (serial.SerialException, OSError) as exc:
                self.log.warning(f'could not send STOP while closing: {exc}')
            self._disconnect('closed')

    # -- the thread: it sleeps until the port has bytes, a new command arrives, or the earliest
    # deadline (deadman, firmware ready, keep-alive, probe, reconnect) falls due; no polling tick
    def _run(self) -> None:
        while not self._stop.is_set():
            if self._serial is None:
                self.stats.connect_attempts += 1
                if not self._connect():
                    self._sleep_until(time.monotonic() + self.reconnect_period)
                continue
            try:
                deadline = self._service(time.monotonic())
                self._waker.wait([self._serial.fileno()], wait_timeout(deadline, time.monotonic()))
                self.stats.wakeups += 1
            except (serial.SerialException, OSError, ValueError) as exc:
                self.stats.serial_errors += 1
                self.stats.last_error = f'serial error: {exc}'
                self.log.error(f'serial error on {self.stats.port}: {exc}; '
                               'motors stopped, reconnecting')
                self.controller.stop()
                self._disconnect('disconnected')

    def _sleep_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` or ``close``: commands meanwhile do not hurry a reconnect."""
        while not self._stop.is_set():
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return
            self._waker.wait([], timeout)

    def _connect(self) -> bool:
        candidates = port_candidates(self.port_spec)
        if not candidates:
            self.stats.last_error = f'no serial port matches {self.port_spec or "the scan"}'
            return False
        for path in candidates:
            try:
                port = serial.Serial(path, self.baud, timeout=0, write_timeout=WRITE_TIMEOUT_S)
            except (serial.SerialException, OSError) as exc:
                self.stats.last_error = f'cannot open {path}: {exc}'
                continue
            self._serial = port
            self._buffer = b''
            self.scheduler.reset()
            self.stats.port = path
            self.stats.connects += 1
            self._connected_at = time.monotonic()
            self._next_probe = self._connected_at + BOOT_GRACE_S
            if self.forced_dialect is not None:
                self.stats.state = 'connected'
            else:
                self.stats.state = 'detecting'
                self.stats.dialect = None
                self.scheduler.set_dialect(None)
            self.log.info(f'opened {path}')
            self.on_open(path)
            if self.stats.connects == 1:
                self._stop_at_once(path)
            return True
        return False

    def _stop_at_once(self, path: str) -> None:
        """STOP before anything slow: a (re)started node does not know the motors' state.

        A booting v2 reads it late or never, which is harmless; the scheduler still sends
        its own first STOP once the firmware is identified.
        """
        assert self._serial is not None
        try:
            self._serial.write(STOP_LINE)
        except (serial.SerialException, OSError) as exc:
            self.log.warning(f'could not send STOP on opening {path}: {exc}')
            return  # the next read or write finds the error and reconnects
        self.stats.lines_sent += 1
        self.on_sent(STOP_LINE, time.monotonic())

    def _disconnect(self, state: str) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except (serial.SerialException, OSError):
                pass
        self._serial = None
        self.stats.state = state

    def _service(self, now: float) -> Optional[float]:
        """Read, run the deadman, write what is due; return when to wake at the latest."""
        assert self._serial is not None
        data = self._serial.read(READ_CHUNK_BYTES)
        if data:
            self._buffer += data
            *lines, self._buffer = self._buffer.split(b'\n')
            if len(self._buffer) > MAX_LINE_BYTES:  # garbage without newlines
                self._buffer = b''
                self.stats.unparsed += 1
            for line in lines:
                if line.strip():
                    self._handle(parse_reply(line), now)
        wheels = self.controller.update(now)  # runs the deadman even while detecting
        if self.stats.state == 'detecting':
            # Nothing but probes until the firmware answers: a booting v2 reads no lines
            # for ~3 s, and commands sent meanwhile would run late, all at once.
            return earliest(self._probe(now), self.controller.deadline())
        line = self.scheduler.next_line(wheels, now)
        if line is not None:
            self._serial.write(line)
            self.stats.lines_sent += 1
            self.on_sent(line, now)
        ramp = (max(self.scheduler.ready_at, now + RAMP_RECHECK_S)
                if self.controller.ramping else None)
        return earliest(self.scheduler.due(wheels, now), ramp, self.controller.deadline())

    def _probe(self, now: float) -> Optional[float]:
        """Probe for the dialect; return when to probe next (None: detection is over)."""
        if now - self._connected_at > self.detect_timeout:
            self.stats.state = 'connected'
            self.stats.last_error = 'firmware dialect not detected; using timing safe for both'
            self.log.warning(f'no reply identified the firmware on {self.stats.port} within '
                             f'{self.detect_timeout:.1f} s; driving with timing safe for both')
        elif now >= self._next_probe:
            assert self._serial is not None
            self._serial.write(STATUS_LINE)
            self.stats.lines_sent += 1
            self._next_probe = now + PROBE_PERIOD_S
        if self.stats.state != 'detecting':
            return now  # connected now: schedule the first line at once
        return earliest(self._next_probe, self._connected_at + self.detect_timeout + TIMER_SLACK_S)

    def _handle(self, reply: Reply, now: float) -> None:
        self.stats.last_reply = str(reply)[:LAST_REPLY_CHARS]
        self.stats.last_reply_time = now
        dialect = dialect_of(reply)
        if dialect is not None and self.forced_dialect is None and self.stats.dialect != dialect:
            self.stats.dialect = dialect
            self.scheduler.set_dialect(dialect)
            self.log.info(f'firmware dialect {dialect.value} detected on {self.stats.port}')
        if self.stats.state == 'detecting' and dialect is not None:
            self.stats.state = 'connected'
        if isinstance(reply, Boot):
            if reply.ready:
                self.stats.resets += 1
            self.scheduler.firmware_stopped()  # a (re)booted firmware holds the motors still
        elif isinstance(reply, Emergency):
            self.stats.emergencies += 1
            self.scheduler.firmware_stopped()
        elif isinstance(reply, Ack) and reply.command == 'STOP':
            # also one motor_guard sent while this process was stopped: the next target
            # that moves is sent again, not taken as already running
            self.scheduler.firmware_stopped()
        elif isinstance(reply, FirmwareError):
            self.stats.firmware_errors += 1
            self.stats.last_error = f'firmware error: {reply.error} {reply.detail}'.strip()
        elif isinstance(reply, Unparsed):
            self.stats.unparsed += 1
        self.on_reply(reply)
