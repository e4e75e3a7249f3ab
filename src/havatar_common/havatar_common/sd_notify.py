"""systemd's readiness protocol (``Type=notify``) without a dependency; needs no ROS.

A unit with ``Type=notify`` gives its program ``$NOTIFY_SOCKET``, an AF_UNIX datagram
socket (a path, or ``@name`` in the abstract namespace). ``notify('READY=1')`` sends one
datagram there; without ``$NOTIFY_SOCKET`` (not started by systemd) it does nothing.
See sd_notify(3).
"""
from __future__ import annotations

import os
import socket
from typing import Mapping, Optional

NOTIFY_SOCKET_ENV = 'NOTIFY_SOCKET'


def notify(state: str, env: Optional[Mapping[str, str]] = None) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1``, ``STATUS=...``) to systemd.

    Returns True when sent, False when there is no ``$NOTIFY_SOCKET`` or the send failed
    (readiness is a courtesy to systemd: a failed send must never stop the program).
    """
    address = (os.environ if env is None else env).get(NOTIFY_SOCKET_ENV, '')
    if not address:
        return False
    if address.startswith('@'):  # the abstract namespace
        address = '\0' + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), address)
    except OSError:
        return False
    return True
