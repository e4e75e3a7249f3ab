"""The speech endpoints, the same on the robot's server and the cloud relay (no ROS).

``GET /api/phrases?lang=`` and ``PUT /api/phrases`` (the user's phrase board),
``GET /api/recent`` (their last spoken phrases) and ``GET /api/predict?lang=&text=``
(word suggestions, ``predictor.predict``), for the user the server found from the
request's token (``user_of``, which refuses a wrong one). Bad input answers 400 with
``{"error": ...}``; a body over ``MAX_BODY`` answers 413; prediction without the
``wordfreq`` package answers 503.
"""
from __future__ import annotations

import asyncio
import json
from typing import Awaitable, Callable

from aiohttp import web

from .predictor import LANGUAGES, MAX_TEXT, predict
from .speech_store import SpeechStore, StoreUnavailable, checked_phrases, default_phrases

MAX_BODY = 64 * 1024
UserOf = Callable[[web.Request], Awaitable[str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SpeechApi:
    """The handlers, over ``store``; ``user_of`` names the request's user or raises 401."""

    def __init__(self, store: SpeechStore, user_of: UserOf) -> None:
        self.store = store
        self.user_of = user_of

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get('/api/phrases', _answering_outages(self.phrases))
        router.add_put('/api/phrases', _answering_outages(self.save_phrases))
        router.add_get('/api/recent', _answering_outages(self.recent))
        router.add_get('/api/predict', _answering_outages(self.predict))

    async def phrases(self, request: web.Request) -> web.Response:
        user = await self.user_of(request)
        lang = _lang(request.query.get('lang', 'en'))
        record = await self.store.load(user)
        edited = record.phrases is not None
        return web.json_response({'phrases': record.phrases if edited else default_phrases(lang),
                                  'default': not edited})

    async def save_phrases(self, request: web.Request) -> web.Response:
        user = await self.user_of(request)
        if (request.content_length or 0) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length or 0)
        raw = await request.read()  # a body without a length: aiohttp's client_max_size bounds it
        if len(raw) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
        try:
            body = json.loads(raw)
            phrases = checked_phrases(body['phrases'] if isinstance(body, dict) else None)
        except (ValueError, KeyError) as exc:
            raise _bad(str(exc) if isinstance(exc, ValueError) else '{"phrases": [...]} expected') from None
        record = await self.store.set_phrases(user, phrases)
        return web.json_response({'phrases': record.phrases, 'default': False})

    async def recent(self, request: web.Request) -> web.Response:
        user = await self.user_of(request)
        return web.json_response({'recent': (await self.store.load(user)).recent})

    async def predict(self, request: web.Request) -> web.Response:
        user = await self.user_of(request)
        lang = _lang(request.query.get('lang', ''))
        text = request.query.get('text', '')
        if len(text) > MAX_TEXT:
            raise _bad(f'text of at most {MAX_TEXT} characters expected')
        history = (await self.store.load(user)).history
        try:
            result = await asyncio.to_thread(predict, lang, text, history)  # the first call loads the list
        except RuntimeError as exc:  # no wordfreq here
            raise web.HTTPServiceUnavailable(text=json.dumps({'error': str(exc)}),
                                             content_type='application/json') from None
        return web.json_response({'lang': lang, **result})

    async def spoke(self, user: str, text: str) -> None:
        """A ``say`` of ``user`` passed: keep it (the relay core's ``on_say``)."""
        await self.store.spoke(user, text)


def _answering_outages(handler: Handler) -> Handler:
    """``handler`` with ``StoreUnavailable`` (Redis down) answered 503, as the relay does elsewhere."""
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except StoreUnavailable:
            raise web.HTTPServiceUnavailable(text=json.dumps({'error': 'the store is unavailable; try again'}),
                                             content_type='application/json') from None
    return handle


def _lang(value: str) -> str:
    if value not in LANGUAGES:
        raise _bad(f'lang must be one of {", ".join(LANGUAGES)}')
    return value


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({'error': message}), content_type='application/json')
