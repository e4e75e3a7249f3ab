"""Slowloris clients for the server-limit tests: connections that send a request's headers
one line at a time and never finish them (127.0.0.1 only).
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Optional

DRIP_S = 0.5


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

    async def wait_all_closed(self, timeout: float) -> float:
        """Wait until every connection is closed; the seconds the last one lasted."""
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), timeout)
        return max(t for t in self.closed_after if t is not None)
