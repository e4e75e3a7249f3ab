"""No process of the demo outlives it, however the demo ends (Havatar issue 10).

Each case starts the real demo (about 10-20 s), records every process below it and the TCP
ports they listen on, ends the demo one way, and checks that all of them are gone and the
ports free within ``GONE_WITHIN`` seconds.
"""
from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from havatar_testing import ros_executable, wait_until

GONE_WITHIN = 20.0  # seconds from the signal to the last process gone (an orderly stop ~5 s)
URLS = r'relay web UI \(server mode\): (\S+)'


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie waits for init; it holds nothing)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Tree:
    """Every process ever seen below ``root``, also after the root died and they were
    adopted by init: descendants of every known process count (ffmpeg started late).
    """

    def __init__(self, root: int) -> None:
        self.root = psutil.Process(root)
        self.known: dict[int, psutil.Process] = {}

    def update(self) -> None:
        for parent in [self.root, *self.known.values()]:
            try:
                for child in parent.children(recursive=True):
                    self.known.setdefault(child.pid, child)
            except psutil.NoSuchProcess:
                continue

    def alive(self) -> list[psutil.Process]:
        self.update()
        return [p for p in self.known.values() if alive(p)]

    def listening_ports(self) -> set[int]:
        ports = set()
        for process in self.alive():
            try:
                ports |= {c.laddr.port for c in process.net_connections(kind='tcp')
                          if c.status == psutil.CONN_LISTEN}
            except psutil.NoSuchProcess:
                continue
        return ports

    def names(self) -> list[str]:
        names = []
        for process in self.alive():
            try:
                names.append(process.name())
            except psutil.NoSuchProcess:
                continue
        return names

    def describe(self, processes: list[psutil.Process]) -> list[str]:
        out = []
        for p in processes:
            try:
                out.append(f'{p.pid} {" ".join(p.cmdline())[:120]}')
            except psutil.Error:
                out.append(str(p.pid))
        return out

    def kill_all(self) -> None:
        for process in self.alive():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


def port_free(port: int) -> bool:
    """Whether a new server could listen on 127.0.0.1:port now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
        return True


class Demo:
    """The demo with stdout and stderr on a pipe or on a terminal (a pty) read by the test."""

    def __init__(self, argv: list[str], env: dict[str, str], terminal: bool) -> None:
        self.output = ''
        if terminal:
            self._fd, slave = os.openpty()
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                          env=env, start_new_session=True)
            os.close(slave)
        else:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, env=env, start_new_session=True)
            assert self.popen.stdout is not None
            self._fd = self.popen.stdout.fileno()
        self._open = True

    def _read(self, wait: float) -> bool:
        """Read what is there (waiting up to ``wait``); False at the end of the output."""
        if not select.select([self._fd], [], [], wait)[0]:
            return True
        try:
            data = os.read(self._fd, 65536)
        except OSError:  # a pty whose other side closed: EIO
            return False
        self.output += data.decode(errors='replace')
        return bool(data)

    def wait_for_output(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output):
            if not self._read(0.2) or self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f'demo did not print {pattern!r} (exit code '
                                     f'{self.popen.poll()}); output:\n{self.output[-3000:]}')

    def close_output(self) -> None:
        """The reader goes away: a closed pipe (``demo | tee`` with tee killed) or terminal."""
        if self._open:
            self._open = False
            if self.popen.stdout is not None:
                self.popen.stdout.close()
            else:
                os.close(self._fd)

    def drain(self) -> None:
        while self._open and self._read(0.0):
            pass

    def kill(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()
        self.close_output()


@pytest.fixture
def start_demo(ros_env: dict[str, str], ros_domain: int, tmp_path: Path) -> Iterator:
    started: list[Demo] = []

    def start(terminal: bool = False) -> Demo:
        argv = [str(ros_executable('havatar_bringup', 'demo')), '--headless',
                '--run-dir', str(tmp_path / 'demo'), '--domain-id', str(ros_domain)]
        demo = Demo(argv, ros_env, terminal)
        started.append(demo)
        return demo
    try:
        yield start
    finally:
        for demo in started:
            demo.kill()


# how the demo ends: (signal, to its process group or to it alone, its output on a terminal,
# the reader of its output gone first, its exit code)
ENDINGS = {
    'ctrl-c': (signal.SIGINT, True, False, False, 0),
    'sigterm': (signal.SIGTERM, False, False, False, 0),
    'terminal-closed-sighup': (signal.SIGHUP, True, True, True, 0),
    'ctrl-c-with-tee-gone': (signal.SIGINT, True, False, True, 0),
    'sigkill': (signal.SIGKILL, False, False, False, -signal.SIGKILL),
}


@pytest.mark.parametrize('ending', list(ENDINGS))
def test_no_process_of_the_demo_outlives_it(start_demo, ending):
    sig, to_group, terminal, reader_gone, exit_code = ENDINGS[ending]
    demo = start_demo(terminal)
    tree = Tree(demo.popen.pid)
    try:
        demo.wait_for_output(URLS, timeout=90)
        # the streaming node's ffmpeg (server mode) is part of what must go
        wait_until(lambda: 'ffmpeg' in tree.names(), 30, 'an ffmpeg below the demo')
        # the servers, the simulator, robot_container (every node), motor_guard and ffmpeg
        assert len(tree.alive()) >= 7, tree.describe(tree.alive())
        ports = tree.listening_ports()
        assert len(ports) >= 7, ports  # UI, MJPEG, relay, RTSP, WebRTC, API, Redis

        if reader_gone:
            demo.close_output()
        if to_group:  # as a terminal does (Ctrl-C, hang-up): the demo's group; its children have their own
            os.killpg(demo.popen.pid, sig)
        else:
            os.kill(demo.popen.pid, sig)
        start = time.monotonic()
        try:
            wait_until(lambda: not tree.alive(), GONE_WITHIN, 'every process of the demo to end',
                       interval=0.2)
        except TimeoutError:
            left = tree.alive()
            pytest.fail(f'{len(left)} processes left {GONE_WITHIN} s after {ending}: '
                        f'{tree.describe(left)}')
        assert demo.popen.wait(timeout=max(1.0, GONE_WITHIN - (time.monotonic() - start))) == exit_code
        wait_until(lambda: all(port_free(p) for p in ports), 5, f'ports {sorted(ports)} free')
        demo.drain()
        if not reader_gone and sig != signal.SIGKILL:
            assert demo.output.rstrip().endswith('stopped.'), demo.output[-2000:]
    finally:
        demo.kill()
        tree.kill_all()
