"""The robot's microphone to local browsers over ``/audio/ws`` (ROS-free).

Each binary WebSocket message is one microphone chunk: ``FRAME_HEADER`` (sequence, sample
rate, channels, format version, capture time in ms since the epoch) then the chunk's S16LE
PCM as the microphone node published it. ``web/audio-buffer.js`` parses it (a test keeps the
two equal). PCM, not Opus: 48 kHz mono is 0.77 Mbit/s, nothing on a LAN or Wi-Fi, while an
encoder would cost the Pi's CPU per listener-less chunk and the browser would need WebCodecs
to decode it; the cloud path already carries Opus through MediaMTX.

``AudioHub`` (on the local server's event loop) holds the listeners: each has a short queue
that drops its oldest frame when the browser falls behind, so a slow listener never delays
another or grows memory. ``on_listening(True/False)`` fires when the first listener comes
and the last one goes (the relay node subscribes to the microphone only in between).
"""
from __future__ import annotations

import asyncio
import struct
from typing import Callable

from aiohttp import WSMsgType, web

FRAME_HEADER = struct.Struct('<IIHHd')
FRAME_VERSION = 1
QUEUE_FRAMES = 10  # 200 ms of 20 ms chunks; older ones are dropped for a slow listener


def encode_frame(sequence: int, rate: int, channels: int, stamp_ns: int, pcm: bytes) -> bytes:
    """One ``/audio/ws`` message."""
    return FRAME_HEADER.pack(sequence % 2**32, rate, channels, FRAME_VERSION, stamp_ns / 1e6) + pcm


def decode_frame(frame: bytes) -> tuple[int, int, int, float, bytes]:
    """``(sequence, rate, channels, stamp_ms, pcm)`` of one message (tests, tools)."""
    sequence, rate, channels, _, stamp_ms = FRAME_HEADER.unpack_from(frame)
    return sequence, rate, channels, stamp_ms, frame[FRAME_HEADER.size:]


class AudioHub:
    """Fans microphone frames out to the connected ``/audio/ws`` listeners."""

    def __init__(self, on_listening: Callable[[bool], None]) -> None:
        self.on_listening = on_listening
        self._queues: set[asyncio.Queue[bytes]] = set()
        self.dropped = 0

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def publish(self, frame: bytes) -> None:
        """Queue ``frame`` for every listener (on the loop: ``loop.call_soon_threadsafe``)."""
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(frame)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /audio/ws`` (the token was checked by the server's middleware)."""
        ws = web.WebSocketResponse(heartbeat=10.0)
        await ws.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_FRAMES)
        self._queues.add(queue)
        if len(self._queues) == 1:
            self.on_listening(True)
        sender = asyncio.ensure_future(self._send(ws, queue))
        try:
            async for message in ws:  # listeners send nothing we use; this ends at close
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            sender.cancel()
            self._queues.discard(queue)
            if not self._queues:
                self.on_listening(False)
            await ws.close()
        return ws

    @staticmethod
    async def _send(ws: web.WebSocketResponse, queue: asyncio.Queue[bytes]) -> None:
        try:
            while True:
                await ws.send_bytes(await queue.get())
        except ConnectionError:
            pass  # the browser went away mid-send; the reader sees the close
