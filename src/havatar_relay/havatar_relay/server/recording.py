"""On-demand recording of a robot's stream through MediaMTX's recorder, for the relay server.

The relay holds MediaMTX's admin token; users never reach MediaMTX's API or its playback
server (recordings), only the relay's endpoints, which check their own tokens first.
Recording one robot adds a path configuration of its own (``robot1``, ahead of the robot
pattern) with ``record: true`` and the pattern's on-demand settings (so a reader arriving
while the robot is idle still waits for it); MediaMTX changes a path's record setting
without dropping the publisher, so the live stream goes on. Stopping sets it back to false.
"""
from __future__ import annotations

import re
from typing import Any, Optional

import aiohttp

ON_DEMAND_KEYS = ('runOnDemand', 'runOnDemandStartTimeout', 'runOnDemandCloseAfter')
START = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$')  # a recording's start (UTC)


class RecorderError(Exception):
    """MediaMTX could not be asked, or said no; the message says which."""


class Recorder:
    """MediaMTX's control API and playback server, asked with the admin token."""

    def __init__(self, api_url: str, playback_url: str, admin_token: str, timeout: float = 10.0) -> None:
        self.api = api_url.rstrip('/')
        self.playback = playback_url.rstrip('/')
        self.headers = {'Authorization': f'Bearer {admin_token}'}
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: Optional[aiohttp.ClientSession] = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        try:
            async with self.session.request(method, url, **kwargs) as r:
                body = await r.json(content_type=None) if r.status == 200 else await r.text()
                return r.status, body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RecorderError(f'MediaMTX unreachable: {exc}') from None

    async def recording(self, robot_id: str) -> bool:
        status, body = await self._call('GET', f'{self.api}/v3/config/paths/get/{robot_id}')
        if status == 404:
            return False  # no path configuration of its own: never recorded since MediaMTX started
        if status != 200:
            raise RecorderError(f'MediaMTX API answered {status}')
        return bool(body.get('record'))

    async def set_recording(self, robot_id: str, on: bool) -> None:
        status, body = await self._call('PATCH', f'{self.api}/v3/config/paths/patch/{robot_id}',
                                        json={'record': on})
        if status == 404 and on:  # first time: a path configuration of its own
            status, body = await self._call('POST', f'{self.api}/v3/config/paths/add/{robot_id}',
                                            json={'record': True, **await self._on_demand(robot_id)})
        if status not in (200, 404):
            raise RecorderError(f'MediaMTX API answered {status}: {str(body)[:200]}')

    async def _on_demand(self, robot_id: str) -> dict[str, Any]:
        """The on-demand settings of the path pattern ``robot_id`` falls under ({} if none)."""
        status, body = await self._call('GET', f'{self.api}/v3/config/paths/list', params={'itemsPerPage': '1000'})
        if status != 200:
            return {}
        for item in body.get('items') or []:
            name = str(item.get('name') or '')
            if name.startswith('~') and re.search(name[1:], robot_id):
                return {key: item[key] for key in ON_DEMAND_KEYS if item.get(key)}
        return {}

    async def files(self, robot_id: str) -> list[dict[str, Any]]:
        """The robot's recordings, oldest first: ``{start, duration}`` (ISO 8601 UTC, s)."""
        status, body = await self._call('GET', f'{self.playback}/list', params={'path': robot_id})
        if status == 404 or (status == 400 and 'no such file' in str(body)):
            return []  # nothing recorded yet (MediaMTX 1.14: 400 while it has no directory for it)
        if status != 200:
            raise RecorderError(f'MediaMTX playback answered {status}')
        return [{'start': item['start'], 'duration': float(item['duration'])} for item in body]

    async def download(self, robot_id: str, start: str, duration: float) -> aiohttp.ClientResponse:
        """An open response of MediaMTX with the recording as fragmented MP4 (the caller
        releases it). Never ``format=mp4``: MediaMTX 1.14's MP4 muxer panics on a track without
        samples in the range (a recording stopped within a second), and the panic ends its
        whole process; the fragmented muxer writes only the tracks that have samples.
        """
        try:
            r = await self.session.get(f'{self.playback}/get', params={
                'path': robot_id, 'start': start, 'duration': str(duration), 'format': 'fmp4'},
                timeout=aiohttp.ClientTimeout(total=None, sock_read=30))
        except aiohttp.ClientError as exc:
            raise RecorderError(f'MediaMTX unreachable: {exc}') from None
        if r.status != 200:
            r.release()
            raise RecorderError(f'MediaMTX playback answered {r.status}')
        return r
