"""ESP32 motor firmware simulator on a pseudo-terminal (executable ``esp32_sim``).

Speaks the firmware's side of the serial protocol byte for byte and in timing, for
either dialect: boot lines (v2 takes ~2 s, then ~1.2 s more to initialize), replies,
the blocking delays after commands (v2: ~50 ms after PWM, ~300 ms after STOP, ~900 ms
after a watchdog stop) during which nothing is read, the v2 watchdog and heartbeats, and
v1 battery telemetry every 500 ms with a slowly draining battery. Like the firmware it
is one loop: while it "blocks", lines queue up in the terminal's buffer.

    esp32_sim --dialect v2 --link /tmp/robot/ttyESP32 --record /tmp/robot/lines.jsonl \
              --control /tmp/robot/sim.sock

prints ``port: <path>`` when the port is ready. ``--record`` appends one JSON object per
received command line, ``{"t": <unix time s>, "line": "PWM 100 100"}``, flushed at once.
``--control`` is a Unix socket taking one command per connection (``SimControl`` below):

    garbage N        write N random bytes to the port
    drop N           do not answer the next N command lines
    hang SECONDS     stop reading and answering (a stuck firmware)
    reset            reboot: motors stop, boot lines again
    unplug SECONDS   the port disappears (pty closed, link removed) and comes back
    battery VOLTS    set the v1 battery voltage
    state            reply with the motor state as JSON

Every command is answered with one line: ``ok`` (or the state) or ``error: ...``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import socket
import sys
import time
import tty
from pathlib import Path
from typing import Callable, Optional

from havatar_common.lifetime import die_with_parent, inherited_parent_pid

from .firmware_model import BATTERY_FULL_V, Firmware, compact_json

class SerialPort:
    """The simulated USB port: a pseudo-terminal, with a stable symlink as its name."""

    def __init__(self, link: Optional[Path]) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.path = ''

    def open(self) -> str:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no newline translation: bytes as on a UART
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + '.tmp')
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.path)
            tmp.replace(self.link)
        return str(self.link or self.path)

    def close(self) -> None:
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    @property
    def is_open(self) -> bool:
        return self.master >= 0

    def write(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except BlockingIOError:
            pass  # the host is not reading: a real UART drops bytes too


class Simulator:
    """The firmware's loop on a ``SerialPort``, with the fault switches."""

    def __init__(self, dialect: str, port: SerialPort, record: Optional[Path],
                 announce: Callable[[str], None] = print) -> None:
        self.port = port
        self.firmware = Firmware(dialect, time.monotonic())
        self.record = open(record, 'a', buffering=1) if record else None
        self.announce = announce
        self.buffer = b''
        self.drop_replies = 0
        self.blocked_until = 0.0
        self.unplugged_until = 0.0
        self.running = True

    def start(self) -> None:
        self.announce(f'port: {self.port.open()}')
        self._write_lines(self.firmware.boot(time.monotonic())[0])

    # -- fault switches
    def control(self, command: str) -> str:
        words = command.split()
        if not words:
            return 'error: empty command'
        name, args = words[0], words[1:]
        now = time.monotonic()
        try:
            if name == 'garbage':
                self.port.write(bytes(random.getrandbits(8) for _ in range(int(args[0]))))
            elif name == 'drop':
                self.drop_replies = int(args[0])
            elif name == 'hang':
                self.blocked_until = now + float(args[0])
            elif name == 'reset':
                self.buffer = b''
                self.blocked_until = 0.0
                self._write_lines(self.firmware.boot(now)[0])
            elif name == 'unplug':
                self.port.close()
                self.buffer = b''
                self.unplugged_until = now + float(args[0])
                self.firmware.boot(now)  # power is lost with the USB link
            elif name == 'battery':
                self.firmware.set_battery(float(args[0]), now)
            elif name == 'state':
                m = self.firmware.motors
                return compact_json({'left': m.left, 'right': m.right, 'plugged': self.port.is_open,
                           'dialect': self.firmware.dialect})
            else:
                return f'error: unknown command {name!r}'
        except (IndexError, ValueError):
            return f'error: bad arguments for {name!r}'
        return 'ok'

    # -- the loop
    def step(self, timeout: float, extra_fds: list[int]) -> list[int]:
        """One pass of the loop; returns which of ``extra_fds`` are readable."""
        now = time.monotonic()
        if not self.port.is_open:
            if now >= self.unplugged_until:
                self.start()
            readable, _, _ = select.select(extra_fds, [], [], timeout)
            return readable
        if now < self.blocked_until:
            readable, _, _ = select.select(extra_fds, [], [], min(timeout, self.blocked_until - now))
            return readable
        lines, block = self.firmware.tick(now)
        self._write_lines(lines)
        if block:
            self.blocked_until = time.monotonic() + block
            return []
        if self.firmware.booting():
            return select.select(extra_fds, [], [], min(timeout, 0.05))[0]
        line = self._next_line()
        if line is not None:
            self._handle(line)
            return []
        readable, _, _ = select.select([self.port.master] + extra_fds, [], [], timeout)
        if self.port.master in readable:
            try:
                data = os.read(self.port.master, 4096)
            except (BlockingIOError, OSError):
                data = b''
            self.buffer += data
        return [fd for fd in readable if fd != self.port.master]

    def _next_line(self) -> Optional[bytes]:
        if b'\n' not in self.buffer:
            return None
        line, self.buffer = self.buffer.split(b'\n', 1)
        return line.rstrip(b'\r')

    def _handle(self, raw: bytes) -> None:
        text = raw.decode('ascii', 'replace')
        if self.record:
            self.record.write(compact_json({'t': time.time(), 'line': text}) + '\n')
        now = time.monotonic()
        if not text.strip():
            return
        lines, block = self.firmware.handle(text, now)
        if self.drop_replies > 0:
            self.drop_replies -= 1
        else:
            self._write_lines(lines)
        if block:
            self.blocked_until = time.monotonic() + block

    def _write_lines(self, lines: list[str]) -> None:
        if self.port.is_open and lines:
            self.port.write(''.join(line + '\n' for line in lines).encode())


class SimControl:
    """Client of a running simulator's control socket (for tests and benchmarks)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def send(self, command: str, timeout: float = 5.0) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.path)
            sock.sendall(command.encode() + b'\n')
            reply = b''
            while not reply.endswith(b'\n'):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        text = reply.decode().strip()
        if text.startswith('error'):
            raise RuntimeError(f'esp32_sim {command!r}: {text}')
        return text

    def state(self) -> dict:
        return json.loads(self.send('state'))


def read_record(path: str | Path) -> list[tuple[float, str]]:
    """The command lines a simulator recorded: ``[(unix time, line), ...]``."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        entries.append((item['t'], item['line']))
    return entries


def main(args: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='esp32_sim', description=__doc__.split('\n\n')[0])
    parser.add_argument('--dialect', choices=('v1', 'v2'), default='v1')
    parser.add_argument('--link', type=Path, help='stable path (symlink) to the port')
    parser.add_argument('--record', type=Path, help='JSONL file of received command lines')
    parser.add_argument('--control', type=Path, help='Unix socket for fault injection')
    parser.add_argument('--battery', type=float, default=BATTERY_FULL_V, help='v1 battery volts')
    options = parser.parse_args(args)
    # dies with its launcher like the nodes (see spin_node); it starts no process itself
    die_with_parent(signal.SIGTERM, inherited_parent_pid())

    port = SerialPort(options.link)
    sim = Simulator(options.dialect, port, options.record,
                    announce=lambda text: print(text, flush=True))
    sim.firmware.set_battery(options.battery, time.monotonic())
    server = None
    if options.control:
        options.control.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(options.control))
        server.listen(4)

    def stop(*_: object) -> None:
        sim.running = False
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    sim.start()
    try:
        while sim.running:
            readable = sim.step(0.01, [server.fileno()] if server else [])
            if server is not None and server.fileno() in readable:
                _serve_control(server, sim)
    finally:
        port.close()
        if server is not None:
            server.close()
            options.control.unlink(missing_ok=True)
    return 0


def _serve_control(server: socket.socket, sim: Simulator) -> None:
    conn, _ = server.accept()
    with conn:
        conn.settimeout(2.0)
        data = b''
        try:
            while not data.endswith(b'\n'):
                chunk = conn.recv(1024)
                if not chunk:
                    break
                data += chunk
            conn.sendall(sim.control(data.decode(errors='replace').strip()).encode() + b'\n')
        except OSError as exc:
            print(f'control connection failed: {exc}', file=sys.stderr, flush=True)


if __name__ == '__main__':
    sys.exit(main())
