"""Each user's phrase board, last spoken phrases and word history (no ROS).

A ``SpeechRecord`` per user: the quick phrases they edited (``None`` until they save some:
the defaults of the UI's language are served), the last ``MAX_RECENT`` phrases they spoke
(newest first, recorded where their ``say`` passes) and their word ``History`` for the
predictor. Kept in memory (``MemorySpeechStore``), in one JSON file (``FileSpeechStore``:
the robot's, under its config directory, or the relay's data directory) or in Redis
(``RedisSpeechStore``: relay instances share it; the shipped Compose file persists Redis).
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from havatar_common.secrets import write_private

from .predictor import History, normalise

MAX_RECENT = 20
MAX_PHRASES = 60
MAX_PHRASE_CHARS = 500  # protocol.MAX_SAY_CHARS: a phrase is said whole
log = logging.getLogger('havatar_relay')


class StoreUnavailable(Exception):
    """The store cannot be reached now (Redis down); nothing was changed."""

DEFAULT_PHRASES = {
    'en': ['Hello', 'Goodbye', 'Yes', 'No', 'Thank you', 'Please come here', 'I need help',
           'Wait, please'],
    'ro': ['Bună ziua', 'La revedere', 'Da', 'Nu', 'Mulțumesc', 'Te rog, vino aici',
           'Am nevoie de ajutor', 'Așteaptă, te rog'],
    'de': ['Hallo', 'Auf Wiedersehen', 'Ja', 'Nein', 'Danke', 'Bitte komm her', 'Ich brauche Hilfe',
           'Warte bitte'],
}


def default_phrases(lang: str) -> list[str]:
    """The phrase board of a user who never edited theirs, in ``lang`` (English if unknown)."""
    return list(DEFAULT_PHRASES.get(lang, DEFAULT_PHRASES['en']))


def checked_phrases(value: Any) -> list[str]:
    """``value`` as a phrase board: a list of at most ``MAX_PHRASES`` non-empty strings of at
    most ``MAX_PHRASE_CHARS`` (trimmed, normalised); ValueError otherwise.
    """
    if not isinstance(value, list) or len(value) > MAX_PHRASES:
        raise ValueError(f'"phrases" must be a list of at most {MAX_PHRASES} texts')
    phrases = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_PHRASE_CHARS:
            raise ValueError(f'each phrase must be a text of 1 to {MAX_PHRASE_CHARS} characters')
        phrases.append(normalise(item.strip()))
    return phrases


@dataclass
class SpeechRecord:
    """One user's phrases (None: never edited), recent phrases and word history."""

    phrases: Optional[list[str]] = None
    recent: list[str] = field(default_factory=list)
    history: History = field(default_factory=History)

    def spoke(self, text: str) -> None:
        """Record ``text`` as said: first of the recent phrases, its words learnt."""
        text = normalise(text.strip())
        if not text:
            return
        self.recent = [text, *(r for r in self.recent if r != text)][:MAX_RECENT]
        self.history.learn(text)

    def to_json(self) -> dict[str, Any]:
        return {'phrases': self.phrases, 'recent': self.recent, 'history': self.history.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> SpeechRecord:
        """The record saved by ``to_json``; whatever part cannot be read is left empty."""
        if not isinstance(data, dict):
            return cls()
        try:
            phrases: Optional[list[str]] = checked_phrases(data['phrases'])
        except (KeyError, ValueError):
            phrases = None
        recent = [r for r in data.get('recent') or [] if isinstance(r, str)][:MAX_RECENT]
        return cls(phrases, recent, History.from_json(data.get('history')))


class SpeechStore:
    """Records by user name (in memory; the subclasses keep them)."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    async def load(self, user: str) -> SpeechRecord:
        """``user``'s record (an empty one if none); ``StoreUnavailable`` when it cannot be read."""
        return SpeechRecord.from_json(await self._read(user))

    async def set_phrases(self, user: str, phrases: list[str]) -> SpeechRecord:
        """Save ``user``'s phrase board (checked by ``checked_phrases``)."""
        return await self._update(user, lambda record: setattr(record, 'phrases', phrases))

    async def spoke(self, user: str, text: str) -> None:
        """Record that ``user`` said ``text`` (``SpeechRecord.spoke``)."""
        await self._update(user, lambda record: record.spoke(text))

    async def close(self) -> None:
        pass

    async def _update(self, user: str, change: Callable[[SpeechRecord], None]) -> SpeechRecord:
        """Read, ``change`` and write ``user``'s record, one update at a time."""
        async with self._lock:
            record = await self.load(user)
            change(record)
            await self._write(user, record.to_json())
            return record

    async def _read(self, user: str) -> Any:
        return self._records.get(user)

    async def _write(self, user: str, data: dict[str, Any]) -> None:
        self._records[user] = data


MemorySpeechStore = SpeechStore


class FileSpeechStore(SpeechStore):
    """All users' records in one JSON file ``{"users": {name: record}}`` (owner-only, atomic)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            users = json.loads(path.read_text()).get('users')
            self._records = users if isinstance(users, dict) else {}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as exc:
            log.warning('speech store %s cannot be read (%s); starting empty', path, exc)

    async def _write(self, user: str, data: dict[str, Any]) -> None:
        self._records[user] = data
        text = json.dumps({'users': self._records}, ensure_ascii=False, indent=1) + '\n'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(write_private, self.path, text)


class RedisSpeechStore(SpeechStore):
    """Each user's record as JSON at ``<prefix>:speech:<user>``, shared by relay instances:
    an update is a read and a write under ``WATCH`` (retried when another instance wrote the
    record in between, so none is lost).
    """

    def __init__(self, url: str, prefix: str = 'havatar') -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(url, decode_responses=True)
        self._prefix = prefix

    def _key(self, user: str) -> str:
        return f'{self._prefix}:speech:{user}'

    async def _read(self, user: str) -> Any:
        from redis.exceptions import RedisError

        try:
            raw = await self._redis.get(self._key(user))
        except RedisError as exc:
            raise StoreUnavailable(f'Redis: {exc}') from None
        return json.loads(raw) if raw else None

    async def _update(self, user: str, change: Callable[[SpeechRecord], None]) -> SpeechRecord:
        from redis.exceptions import RedisError, WatchError

        key = self._key(user)
        try:
            async with self._redis.pipeline() as pipe:
                while True:
                    try:
                        await pipe.watch(key)
                        raw = await pipe.get(key)
                        record = SpeechRecord.from_json(json.loads(raw) if raw else None)
                        change(record)
                        pipe.multi()
                        pipe.set(key, json.dumps(record.to_json(), ensure_ascii=False))
                        await pipe.execute()
                        return record
                    except WatchError:
                        continue  # written meanwhile by another instance: again, from its version
        except RedisError as exc:
            raise StoreUnavailable(f'Redis: {exc}') from None

    async def close(self) -> None:
        await self._redis.aclose()
