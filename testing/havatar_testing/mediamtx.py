"""A real MediaMTX for tests: Havatar's settings (``havatar_bringup.mediamtx``) on free
127.0.0.1 ports, with users of the test's own, started and stopped.
"""
from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from havatar_bringup.mediamtx import MediaMtxPorts, local_config
from havatar_bringup.processes import ManagedProcess, ProcessManager, find_program


@dataclass
class MediaMtxUser:
    """An entry of ``authInternalUsers``: ``user='any'`` with no password means anyone."""

    user: str
    password: str = ''
    actions: tuple[str, ...] = ('read',)
    path: str = ''

    def as_config(self) -> dict[str, Any]:
        return {'user': self.user, 'pass': self.password, 'ips': [],
                'permissions': [{'action': a, 'path': self.path} for a in self.actions]}


def mediamtx_config(ports: MediaMtxPorts, users: list[MediaMtxUser],
                    overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Havatar's MediaMTX settings on 127.0.0.1 at ``ports``, authenticating ``users``.

    API and metrics are open to localhost without credentials.
    """
    local_admin = MediaMtxUser('any', actions=('api', 'metrics'))
    local_admin_config = local_admin.as_config() | {'ips': ['127.0.0.1', '::1']}
    config = local_config(ports, {'authMethod': 'internal', 'authInternalUsers':
                                  [u.as_config() for u in users] + [local_admin_config]})
    config.update(overrides or {})
    return config


class MediaMtxServer:
    """One MediaMTX process for a test; ``url`` helpers build client addresses."""

    def __init__(self, processes: ProcessManager, work_dir: Path,
                 users: list[MediaMtxUser], overrides: dict[str, Any] | None = None,
                 ports: MediaMtxPorts | None = None) -> None:
        self.ports = ports or MediaMtxPorts()
        self.config_path = work_dir / 'mediamtx.yml'
        self.config_path.write_text(yaml.safe_dump(mediamtx_config(self.ports, users, overrides)))
        self._processes = processes
        self.process: ManagedProcess | None = None

    def start(self, timeout: float = 15.0) -> 'MediaMtxServer':
        """Start (or restart after ``stop``) and wait until the API answers."""
        self.process = self._processes.start(
            'mediamtx', [find_program('mediamtx'), self.config_path])
        self.process.wait_for_http(self.api_url('/v3/paths/list'), timeout=timeout)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def api_url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.ports.api}{path}'

    def api_get(self, path: str) -> Any:
        with urllib.request.urlopen(self.api_url(path), timeout=5) as response:
            return json.load(response)

    def rtsp_url(self, path: str, user: str = '', password: str = '') -> str:
        auth = f'{user}:{password}@' if user else ''
        return f'rtsp://{auth}127.0.0.1:{self.ports.rtsp}/{path}'

    def whep_url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.ports.webrtc}/{path}/whep'

    def whip_url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.ports.webrtc}/{path}/whip'

    def path_ready(self, path: str) -> bool:
        """True when MediaMTX reports ``path`` as having a ready publisher."""
        items = self.api_get('/v3/paths/list').get('items', [])
        return any(item.get('name') == path and item.get('ready') for item in items)
