"""The bits of the MediaMTX control API (v3) the streaming node uses."""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from .rtsp_auth_hop import tls_context


class ApiError(RuntimeError):
    """The API could not be reached or answered with an error."""


@dataclass(frozen=True)
class PathState:
    ready: bool
    bytes_received: int
    readers: int


class MediaMtxApi:
    def __init__(self, base_url: str, user: str = '', password: str = '', timeout: float = 0.7,
                 ca_file: str = '') -> None:
        self.base_url = base_url.rstrip('/')
        self.timeout = timeout
        self.ca_file = ca_file  # for an https:// API: '' = the system's trust store
        self._auth = ('Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode()
                      if user else '')

    def _get(self, path: str) -> dict:
        request = urllib.request.Request(self.base_url + path)
        if self._auth:
            request.add_header('Authorization', self._auth)
        try:
            context = tls_context(self.ca_file) if self.base_url.startswith('https:') else None
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise KeyError(path) from None
            raise ApiError(f'MediaMTX API {path}: HTTP {exc.code}') from None
        except (OSError, ValueError) as exc:
            raise ApiError(f'MediaMTX API at {self.base_url} unreachable: {exc}') from None

    def check(self) -> None:
        """Raise ApiError unless the server answers."""
        self._get('/v3/paths/list?itemsPerPage=1')

    def path(self, name: str) -> PathState:
        """State of one path; a path nobody publishes reads as not ready."""
        try:
            item = self._get('/v3/paths/get/' + urllib.parse.quote(name, safe='/'))
        except KeyError:
            return PathState(False, 0, 0)
        return PathState(bool(item.get('ready')), int(item.get('bytesReceived', 0)),
                         len(item.get('readers') or []))
