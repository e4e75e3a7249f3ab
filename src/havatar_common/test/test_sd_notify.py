"""sd_notify: the datagram systemd's Type=notify waits for, sent over a real AF_UNIX socket."""
from __future__ import annotations

import socket
import uuid

from havatar_common.sd_notify import notify


def test_notify_sends_the_state_to_the_socket_path(tmp_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(tmp_path / 'notify'))
        listener.settimeout(5)
        assert notify('READY=1', {'NOTIFY_SOCKET': str(tmp_path / 'notify')})
        assert listener.recv(4096) == b'READY=1'


def test_notify_reaches_an_abstract_socket():
    name = f'havatar-test-{uuid.uuid4().hex}'
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind('\0' + name)
        listener.settimeout(5)
        assert notify('STATUS=up\nREADY=1', {'NOTIFY_SOCKET': '@' + name})
        assert listener.recv(4096) == b'STATUS=up\nREADY=1'


def test_notify_without_systemd_or_listener_does_nothing(tmp_path):
    assert not notify('READY=1', {})
    assert not notify('READY=1', {'NOTIFY_SOCKET': str(tmp_path / 'nobody-listens')})
