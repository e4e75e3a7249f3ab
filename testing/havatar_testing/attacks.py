"""Attacks for the server-limit tests (127.0.0.1 only; "another client" is 127.0.0.2):
slowloris connections that send a request's headers one line at a time and never finish
them, slow-body connections that send whole headers then dribble the body, and a burst of
token guesses next to the rightful user.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any, Optional

import aiohttp

DRIP_S = 0.5
PROMPT_S = 1.0  # a right token's answer, whatever the guessers do


def session_from(source: str) -> aiohttp.ClientSession:
    """An HTTP client whose connections come from ``source`` (a 127.0.0.0/8 address)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0), force_close=True))


async def get_status(session: aiohttp.ClientSession, url: str, token: str) -> int:
    async with session.get(url, headers={'Authorization': f'Bearer {token}'}) as response:
        return response.status


async def ws_hello(session: aiohttp.ClientSession, base: str, token: str, robot_id: str = 'robot1') -> str:
    """A user's hello at ``base``/ws: ``welcome`` or the refusal's code."""
    async with session.ws_connect(base.replace('http', 'ws') + '/ws') as ws:
        await ws.send_str(json.dumps({'type': 'hello', 'role': 'user', 'token': token, 'robot_id': robot_id}))
        reply: dict[str, Any] = json.loads((await ws.receive(timeout=15)).data)
        return str(reply['type'] if reply['type'] == 'welcome' else reply['code'])


async def timed(coro: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = await coro
    return result, time.monotonic() - started


async def guesses_next_to_the_user(url: str, right: str, free: int = 5, queued: int = 3) -> tuple[float, float]:
    """``free`` wrong tokens at once, then ``queued`` more while the right token is used
    from the same address and from another, which must be answered within ``PROMPT_S``.
    Returns the guess rate (per second) of the free guesses and of the queued ones.
    """
    async with session_from('127.0.0.1') as attacker, session_from('127.0.0.1') as same_nat, \
            session_from('127.0.0.2') as other:
        codes, took = await timed(asyncio.gather(*(get_status(attacker, url, f'guess{i}') for i in range(free))))
        assert codes == [401] * free
        before = free / took
        started = time.monotonic()
        guesses = asyncio.gather(*(get_status(attacker, url, f'guess-b{i}') for i in range(queued)))
        await asyncio.sleep(0.1)
        for session in (same_nat, other):
            code, took = await timed(get_status(session, url, right))
            assert code == 200 and took < PROMPT_S, (code, took)
        code, took = await timed(get_status(other, url, 'a-typo'))  # another address: free
        assert code == 401 and took < PROMPT_S, took
        assert await guesses == [401] * queued
        return before, queued / (time.monotonic() - started)


class Slowloris:
    """``count`` connections from ``source`` to ``host:port``; each records when it closed."""

    def __init__(self, host: str, port: int, count: int, source: str = '127.0.0.1') -> None:
        self.host, self.port, self.count, self.source = host, port, count, source
        self.opened_at = 0.0
        self.closed_after: list[Optional[float]] = [None] * count
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> 'Slowloris':
        self.opened_at = time.monotonic()
        self._tasks = [asyncio.create_task(self._one(i)) for i in range(self.count)]
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _one(self, index: int) -> None:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0))
            writer.write(b'GET /health HTTP/1.1\r\nHost: localhost\r\n')
            line = 0
            while True:  # one more header line now and then, never the blank line
                with contextlib.suppress(asyncio.TimeoutError):
                    if not await asyncio.wait_for(reader.read(1024), DRIP_S):
                        break  # closed by the server
                line += 1
                writer.write(b'X-Slow-%d: x\r\n' % line)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed_after[index] = time.monotonic() - self.opened_at
            if writer is not None:
                writer.close()

    def closed(self) -> int:
        return sum(1 for t in self.closed_after if t is not None)

    async def wait_closed(self, count: int, timeout: float) -> None:
        """Wait until at least ``count`` connections are closed (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self.closed() < count:
            assert time.monotonic() < deadline, f'{self.closed()} of {count} closed within {timeout} s'
            await asyncio.sleep(0.05)

    async def wait_all_closed(self, timeout: float) -> float:
        """Wait until every connection is closed; the seconds the last one lasted."""
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), timeout)
        return max(t for t in self.closed_after if t is not None)


class SlowBody(Slowloris):
    """``count`` connections that each send a whole request head for ``method path`` (with
    ``headers``) at once, then its body (``Content-Length: 1000``) one byte every
    ``DRIP_S``; each records when it closed and the status it was answered (0: none).
    """

    def __init__(self, host: str, port: int, count: int, method: str, path: str,
                 headers: Optional[dict[str, str]] = None, source: str = '127.0.0.1') -> None:
        super().__init__(host, port, count, source)
        self.head = (f'{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n'
                     + ''.join(f'{name}: {value}\r\n' for name, value in (headers or {}).items())
                     + 'Content-Length: 1000\r\n\r\n{').encode()
        self.statuses = [0] * count

    async def _one(self, index: int) -> None:
        writer = None
        answer = b''
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0))
            writer.write(self.head)
            while True:  # one more byte of the body now and then, never all of it
                with contextlib.suppress(asyncio.TimeoutError):
                    data = await asyncio.wait_for(reader.read(1024), DRIP_S)
                    if not data:
                        break  # closed by the server
                    answer += data
                writer.write(b' ')
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed_after[index] = time.monotonic() - self.opened_at
            if answer.startswith(b'HTTP/1.1 '):
                self.statuses[index] = int(answer.split()[1])
            if writer is not None:
                writer.close()
