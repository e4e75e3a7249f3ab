"""The one process supervisor, free-port and program lookup the demo and the tests share."""
from __future__ import annotations

import os
import socket
import stat
import sys

import pytest

from havatar_bringup.processes import ProcessManager, find_program, free_port


def test_free_port_prefers_the_given_port_and_falls_back_when_taken():
    port = free_port()
    assert free_port(port) == port
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', port))
        taken.listen()
        other = free_port(port)
    assert other not in (port, 0)
    udp = free_port(kind=socket.SOCK_DGRAM)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', udp))


def test_find_program_prefers_the_workspace_tools(tmp_path, monkeypatch):
    tool = tmp_path / 'tools' / 'bin' / 'havatar-fake-tool'
    tool.parent.mkdir(parents=True)
    tool.write_text('#!/bin/sh\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv('HAVATAR_WORKSPACE', str(tmp_path))
    assert find_program('havatar-fake-tool') == tool
    assert find_program('sh').name == 'sh'  # not in tools/bin: PATH
    with pytest.raises(FileNotFoundError, match='scripts/setup.sh'):
        find_program('havatar-no-such-tool')


class Abandon(Exception):
    pass


def test_interrupt_abandons_a_wait_and_stop_all_ends_everything(tmp_path):
    calls = []

    def interrupt() -> None:
        calls.append(1)
        if len(calls) > 3:
            raise Abandon

    manager = ProcessManager(tmp_path, dict(os.environ), die_with_parent=True, interrupt=interrupt)
    sleeper = manager.start('sleeper', [sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        with pytest.raises(Abandon):
            sleeper.wait_for_output('never printed', timeout=30)
        assert manager.exited() is None
    finally:
        manager.stop_all()
    assert manager.exited() is sleeper and not sleeper.running()
