"""The speech store: phrase boards, recent phrases and word histories per user, kept in a
file (a new store reads them back) or in Redis.
"""
from __future__ import annotations

import asyncio
import json

import pytest

from havatar_relay.speech_store import (MAX_PHRASES, MAX_RECENT, FileSpeechStore, RedisSpeechStore,
                                        SpeechRecord, StoreUnavailable, checked_phrases, default_phrases)


def test_defaults_are_in_the_uis_language():
    assert 'Mulțumesc' in default_phrases('ro') and 'Ich brauche Hilfe' in default_phrases('de')
    assert default_phrases('xx') == default_phrases('en')
    assert 'I need help' in default_phrases('en') and 'Please come here' in default_phrases('en')


@pytest.mark.parametrize('bad', [None, 'hello', [1], [''], ['  '], ['x' * 501], ['a'] * (MAX_PHRASES + 1)])
def test_bad_phrase_boards_are_refused(bad):
    with pytest.raises(ValueError):
        checked_phrases(bad)


def test_phrases_are_trimmed_and_normalised():
    assert checked_phrases([' Aş vrea ', 'Mulţumesc']) == ['Aș vrea', 'Mulțumesc']


def test_recent_phrases_newest_first_without_repeats_and_bounded():
    record = SpeechRecord()
    for i in range(MAX_RECENT + 5):
        record.spoke(f'phrase {i}')
    record.spoke('phrase 10')
    assert len(record.recent) == MAX_RECENT
    assert record.recent[:2] == ['phrase 10', f'phrase {MAX_RECENT + 4}']
    assert record.recent.count('phrase 10') == 1
    assert record.history.words['phrase'] == MAX_RECENT + 6


async def _fill(store) -> None:
    await store.set_phrases('alice', ['Salut', 'Apă, te rog'])
    await store.spoke('alice', 'Vreau apă rece')
    await store.spoke('bob', 'Hello there')


def test_file_store_survives_a_restart_per_user(tmp_path):
    path = tmp_path / 'data' / 'speech.json'

    async def first() -> None:
        await _fill(FileSpeechStore(path))

    async def second() -> tuple[SpeechRecord, SpeechRecord, SpeechRecord]:
        store = FileSpeechStore(path)  # a new process reads the file
        return await store.load('alice'), await store.load('bob'), await store.load('carol')

    asyncio.run(first())
    assert path.stat().st_mode & 0o077 == 0
    assert 'Apă, te rog' in path.read_text()  # readable UTF-8, not escaped
    alice, bob, carol = asyncio.run(second())
    assert alice.phrases == ['Salut', 'Apă, te rog'] and alice.recent == ['Vreau apă rece']
    assert alice.history.words['apă'] == 1 and 'hello' not in alice.history.words
    assert bob.phrases is None and bob.recent == ['Hello there']
    assert carol == SpeechRecord()


def test_a_damaged_file_starts_empty(tmp_path):
    path = tmp_path / 'speech.json'
    path.write_text('{not json')
    assert asyncio.run(FileSpeechStore(path).load('alice')) == SpeechRecord()
    path.write_text(json.dumps({'users': {'alice': {'phrases': 'bad', 'recent': [1, 'ok']}}}))
    record = asyncio.run(FileSpeechStore(path).load('alice'))
    assert record.phrases is None and record.recent == ['ok']


def test_redis_store_is_shared_and_per_user(redis_url):
    async def run() -> tuple[SpeechRecord, SpeechRecord]:
        writer = RedisSpeechStore(redis_url)
        await _fill(writer)
        await writer.close()
        reader = RedisSpeechStore(redis_url)  # another relay instance
        try:
            return await reader.load('alice'), await reader.load('bob')
        finally:
            await reader.close()

    alice, bob = asyncio.run(run())
    assert alice.phrases == ['Salut', 'Apă, te rog'] and alice.recent == ['Vreau apă rece']
    assert bob.recent == ['Hello there'] and bob.phrases is None


def test_redis_updates_of_two_instances_are_all_kept(redis_url):
    async def run() -> SpeechRecord:
        stores = [RedisSpeechStore(redis_url), RedisSpeechStore(redis_url)]
        try:
            await asyncio.gather(*(stores[i % 2].spoke('alice', f'phrase number{i}') for i in range(40)))
            return await stores[0].load('alice')
        finally:
            for store in stores:
                await store.close()

    record = asyncio.run(run())
    assert record.history.words['phrase'] == 40  # no update lost between the instances
    assert len(record.recent) == MAX_RECENT


def test_redis_down_is_reported_as_unavailable(processes, tmp_path):
    from havatar_bringup.processes import find_program, free_port

    port = free_port()
    redis = processes.start('redis-down', [find_program('redis-server'), '--port', str(port), '--bind',
                                           '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp_path])
    redis.wait_for_port(port, timeout=10)

    async def run() -> None:
        store = RedisSpeechStore(f'redis://127.0.0.1:{port}/0')
        try:
            await store.spoke('alice', 'hello')
            redis.stop()
            with pytest.raises(StoreUnavailable):
                await store.load('alice')
            with pytest.raises(StoreUnavailable):
                await store.spoke('alice', 'again')
        finally:
            await store.close()

    asyncio.run(run())
