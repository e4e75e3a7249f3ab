"""What systemd does for a ``Type=notify`` unit, for tests: a real ``$NOTIFY_SOCKET``."""
from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Callable


class NotifySocket:
    """An AF_UNIX datagram socket bound at ``path``, as systemd binds one for a unit.

    ``env`` is what to add to the program's environment; ``wait_for`` returns when a
    datagram holding the state arrives (observed, not slept for).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.received: list[str] = []

    @property
    def env(self) -> dict[str, str]:
        return {'NOTIFY_SOCKET': str(self.path)}

    def wait_for(self, state: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
        """Wait until a datagram carrying ``state`` (e.g. ``READY=1``) has arrived; give up
        early when ``alive`` (the sender is running) turns false.
        """
        deadline = time.monotonic() + timeout
        while not any(state in message.splitlines() for message in self.received):
            if not alive():
                raise RuntimeError(f'the program exited before sending {state} (received: {self.received})')
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f'no {state} on {self.path} within {timeout:.1f} s '
                                   f'(received: {self.received})')
            self.sock.settimeout(min(left, 0.5))
            try:
                self.received.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue

    def close(self) -> None:
        self.sock.close()
