"""Word prediction speed: what one keystroke in the type-to-speak box costs.

    . scripts/env.sh && python src/havatar_relay/benchmarks/predict_benchmark.py [--rounds 3]

Per language (en, ro, de): the word list's load time (wordfreq, once per process) and the
process's memory growth, then
``predictor.predict`` for every prefix of a few typed sentences (one call per keystroke,
with a user history of 200 learnt phrases), against a baseline in the same run: the same
completions by a linear scan of the list (no sorted index). Then over HTTP: the cloud relay
(in-process aiohttp server, memory store) answering ``GET /api/predict`` per keystroke,
against ``GET /health`` on the same server (the HTTP round trip alone). Figures in ms
(median, 95th percentile); the machine is shared, so they move between runs.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import aiohttp
import psutil
from aiohttp.test_utils import TestServer

from havatar_relay.predictor import LANGUAGES, History, predict, word_list
from havatar_relay.server.app import Settings, create_app

SENTENCES = {
    'en': ['I would like a glass of water please', 'Please come here I need help with the blanket'],
    'ro': ['Aș vrea un pahar cu apă rece', 'Te rog vino aici am nevoie de ajutor cu pătura'],
    'de': ['Ich möchte bitte ein Glas Wasser', 'Bitte komm her ich brauche Hilfe mit der Decke'],
}


def keystrokes(lang: str) -> list[str]:
    return [s[:i] for s in SENTENCES[lang] for i in range(1, len(s) + 1)]


def timed(calls: list[Callable[[], object]]) -> list[float]:
    spent = []
    for call in calls:
        start = time.perf_counter()
        call()
        spent.append((time.perf_counter() - start) * 1000)
    return spent


def linear_completions(lang: str, text: str, limit: int = 6) -> list[str]:
    """The baseline: the list scanned in rank order for the last word's prefix."""
    prefix = text.split(' ')[-1].lower()
    if not prefix:
        return word_list(lang).ranked[:limit]
    return [w for w in word_list(lang).ranked if w.startswith(prefix) and w != prefix][:limit]


def figures(ms: list[float]) -> str:
    ms = sorted(ms)
    return f'median {statistics.median(ms):6.2f}  p95 {ms[int(len(ms) * 0.95)]:6.2f}'


async def over_http(rounds: int) -> None:
    config = Path(tempfile.mkdtemp()) / 'relay.yaml'
    config.write_text('robots: {}\nusers: {bench: {token: bench-token, robots: []}}\n')
    server = TestServer(create_app(Settings(config=config)))
    await server.start_server()
    base = f'http://127.0.0.1:{server.port}'
    try:
        async with aiohttp.ClientSession() as session:
            async def get(path: str, **params: str) -> float:
                start = time.perf_counter()
                async with session.get(base + path, params=params,
                                       headers={'Authorization': 'Bearer bench-token'}) as r:
                    await r.read()
                    assert r.status == 200, r.status
                return (time.perf_counter() - start) * 1000

            for lang in LANGUAGES:  # the lists are loaded: measure the steady state
                predict(lang, 'a')
            health = [await get('/health') for _ in range(200)]
            print(f'HTTP  GET /health (baseline)          {figures(health)}')
            for lang in LANGUAGES:
                spent = [await get('/api/predict', lang=lang, text=t)
                         for _ in range(rounds) for t in keystrokes(lang)]
                print(f'HTTP  GET /api/predict {lang}               {figures(spent)}')
    finally:
        await server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    options = parser.parse_args()
    history = History()
    for i in range(200):
        history.learn(f'{SENTENCES["ro"][i % 2]} {SENTENCES["en"][i % 2]} {SENTENCES["de"][i % 2]} {i}')
    print('per keystroke, ms')
    process = psutil.Process()
    rss = process.memory_info().rss
    for lang in LANGUAGES:
        start = time.perf_counter()
        word_list(lang)
        print(f'{lang}: word list loaded in {(time.perf_counter() - start) * 1000:.0f} ms '
              f'({len(word_list(lang).ranked)} words; process +{(process.memory_info().rss - rss) / 1e6:.0f} MB '
              'since before the first list)')
        texts = keystrokes(lang) * options.rounds
        ours = timed([lambda t=t: predict(lang, t, history) for t in texts])
        base = timed([lambda t=t: linear_completions(lang, t) for t in texts])
        print(f'{lang}  predict (index + history)      {figures(ours)}')
        print(f'{lang}  baseline: linear scan, no history {figures(base)}')
    asyncio.run(over_http(options.rounds))
    return 0


if __name__ == '__main__':
    sys.exit(main())
