"""Who watches each robot, so robots encode only while someone does (protocol v2 ``viewers``).

MediaMTX's control API (asked with the admin token, like the recordings) lists every path's
readers and which paths record. Every ``poll_s`` each relay instance tells the robots
connected to it how many read their path and whether a recording runs; the robot encodes
while either says so, and whenever this word stops coming (the robot's ``readers_lease``).
A reader arriving is seen first by MediaMTX's authentication hook: the robot is told at once
(the hook's answer does not wait: MediaMTX's path manager waits for it). MediaMTX holds the
reader meanwhile, as the robot paths are on demand (``runOnDemand``, see
``havatar_bringup.mediamtx``), until the robot publishes. When MediaMTX cannot be asked,
nothing is sent and robots encode: every doubt ends in video, never in a viewer without it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Optional

import aiohttp

from .. import protocol as p

POLL_S = 1.0     # between two counts sent to each robot (the robot's readers_lease is 3 s)
PENDING_S = 5.0  # a reader the hook let in counts this long before MediaMTX lists it
log = logging.getLogger('havatar_relay')


class WatchersError(Exception):
    """MediaMTX's API could not be asked."""


class Watchers:
    def __init__(self, api_url: str, admin_token: str,
                 robots: Callable[[], dict[str, Callable[[p.Message], None]]],
                 elsewhere: Callable[[str], Awaitable[bool]],
                 send: Callable[[str, p.Message], Awaitable[None]], poll_s: float = POLL_S,
                 pending_s: float = PENDING_S) -> None:
        """``robots``: the robots connected here that understand ``viewers``, each with a way
        to post it; ``elsewhere``: whether a robot is connected to another instance;
        ``send``: to a robot through the broker.
        """
        self.elsewhere = elsewhere
        self.api = api_url.rstrip('/')
        self.headers = {'Authorization': f'Bearer {admin_token}'}
        self.robots = robots
        self.send = send
        self.poll_s, self.pending_s = poll_s, pending_s
        self._pending: dict[str, float] = {}  # robot -> until when a reader let in counts
        self._seen: dict[str, tuple[int, bool]] = {}  # robot -> what it was told last (for the log)
        self._session: Optional[aiohttp.ClientSession] = None
        self._task: Optional[asyncio.Task[None]] = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(headers=self.headers, timeout=aiohttp.ClientTimeout(total=2.0))
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._session is not None:
            await self._session.close()

    async def _get(self, path: str) -> Any:
        assert self._session is not None
        try:
            async with self._session.get(f'{self.api}{path}') as r:
                if r.status != 200:
                    raise WatchersError(f'MediaMTX API answered {r.status} to {path}')
                return await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WatchersError(f'MediaMTX API unreachable: {exc}') from None

    async def counts(self) -> tuple[dict[str, int], set[str]]:
        """Readers per path, and the paths with a recording configured."""
        paths = await self._get('/v3/paths/list?itemsPerPage=10000')
        configs = await self._get('/v3/config/paths/list?itemsPerPage=10000')
        readers = {str(item.get('name')): len(item.get('readers') or []) for item in paths.get('items') or []}
        recording = {str(item.get('name')) for item in configs.get('items') or [] if item.get('record')}
        return readers, recording

    async def poll(self) -> None:
        """Tell each robot here who watches it."""
        robots = self.robots()
        if not robots:
            return
        readers, recording = await self.counts()
        now = time.monotonic()
        for robot_id, post in robots.items():
            count = readers.get(robot_id, 0)
            if self._pending.get(robot_id, 0.0) > now:
                count = max(count, 1)
            seen = (count, robot_id in recording)
            if self._seen.get(robot_id) != seen:
                self._seen[robot_id] = seen
                log.info('%s: %d reader(s)%s', robot_id, count, ', recording' if seen[1] else '')
            post(p.Viewers(readers=count, recording=seen[1], ts=p.now_ms()))

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.poll()
                failing = False
            except WatchersError as exc:  # nothing is sent: the robots encode
                if not failing:
                    log.warning('viewers unknown (robots encode): %s', exc)
                failing = True
            except Exception:
                log.exception('viewers')
            await asyncio.sleep(self.poll_s)

    async def reader_arrives(self, robot_id: str) -> None:
        """MediaMTX let a reader of ``robot_id``'s stream in: wake the robot's encoder."""
        self._pending[robot_id] = time.monotonic() + self.pending_s
        message = p.Viewers(readers=1, ts=p.now_ms())
        post = self.robots().get(robot_id)
        if post is not None:
            post(message)
        elif await self.elsewhere(robot_id):  # its instance's next count may say 0 first:
            await self.send(robot_id, message)  # the robot's idle_linger covers that
