"""``/talk/ws`` on the robot's own server: the driver's browser microphone to ``audio/speaker``.

Who may talk: the user session that drives (the same rule as ``say``; if nobody drives,
talking takes control). The talker names its live ``/ws`` session in the hello; losing
control, or that session closing, ends the talk. One talk at a time: a newer one (the driver
pressed again in another tab) replaces the older. Wire rules and limits: ``talk.py``.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Callable, Optional

from aiohttp import WSCloseCode, WSMsgType, web

from havatar_common.auth import token_matches

from .relay_core import RelayCore
from .talk import HELLO_TIMEOUT_S, MAX_REFUSALS, FrameGate, TalkError, TalkFormat, is_stop, parse_hello



class TalkEndpoint:
    """Serves ``/talk/ws``; ``play(pcm)`` gets every accepted frame (on the server's loop)."""

    def __init__(self, core: RelayCore, robot_id: str, token: str, play: Callable[[bytes], None],
                 fmt: TalkFormat = TalkFormat()) -> None:
        self.core = core
        self.robot_id = robot_id
        self.token = token
        self.play = play
        self.fmt = fmt
        self.talking = 0       # open talks now
        self.frames = 0        # frames played, all talks
        self.refused = 0       # frames refused, all talks
        self._current: Optional[web.WebSocketResponse] = None

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=self.fmt.max_frame_bytes * 2)
        await ws.prepare(request)
        try:
            session_id = await self._hello(ws, self.core.client_address(request))
            older, self._current = self._current, ws
            if older is not None and not older.closed:
                await _refuse(older, TalkError('forbidden', 'replaced by a newer talk (one at a time)'))
            await ws.send_str(json.dumps(self.fmt.ready()))
            self.talking += 1
            try:
                await self._stream(ws, session_id)
            finally:
                self.talking -= 1
        except TalkError as exc:
            await _refuse(ws, exc)
        except ConnectionError:
            pass
        if not ws.closed:
            await ws.close()
        return ws

    async def _hello(self, ws: web.WebSocketResponse, client: str) -> str:
        try:
            frame = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise TalkError('hello_required', f'no hello within {HELLO_TIMEOUT_S:.0f} s') from None
        if frame.type != WSMsgType.TEXT:
            raise TalkError('hello_required', 'the first frame must be the JSON hello')
        hello = parse_hello(frame.data)
        if not token_matches(hello.token, self.token):
            await self.core.throttle.refuse(client, hello.token)  # a wrong token waits
            raise TalkError('unauthorized', 'wrong robot access token')
        why = await self.core.talk_refusal(self.robot_id, hello.session_id, take=True)
        if why:
            raise TalkError('not_driver', why)
        return hello.session_id

    async def _stream(self, ws: web.WebSocketResponse, session_id: str) -> None:
        gate = FrameGate(self.fmt)
        refused = 0
        async for frame in ws:
            if frame.type == WSMsgType.ERROR:
                return
            try:
                if frame.type == WSMsgType.TEXT:
                    if is_stop(frame.data):
                        return
                    continue
                if frame.type != WSMsgType.BINARY:
                    continue
                gate.check(frame.data, time.monotonic())
            except TalkError as exc:
                self.refused += 1
                refused += 1
                if refused >= MAX_REFUSALS:
                    raise TalkError(exc.code, f'{refused} frames refused, the last: {exc.message}') from None
                if refused % 25 == 1:  # say why, without answering every frame
                    await ws.send_str(json.dumps(exc.reply()))
                continue
            why = await self.core.talk_refusal(self.robot_id, session_id, take=False)
            if why:
                raise TalkError('not_driver', why)
            self.play(frame.data)
            self.frames += 1


async def _refuse(ws: web.WebSocketResponse, exc: TalkError) -> None:
    try:
        await ws.send_str(json.dumps(exc.reply()))
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=exc.message[:120].encode())
    except (ConnectionError, RuntimeError):
        pass
