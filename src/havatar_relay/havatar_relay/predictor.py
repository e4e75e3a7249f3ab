"""Word prediction for the type-to-speak box (pure Python, no ROS: both servers use it).

Completions of the word being typed and the words likely to come next, from a frequency
word list per language (``wordfreq``: en, ro, de) and, ranked above it, what this user has
said before (``History``: the words and word pairs of their spoken phrases). Romanian
cedilla letters (ş ţ) are normalised to the comma-below ones (ș ț) in what is typed, learnt
and suggested. wordfreq spells German ß as ss; a typed ß is kept in the completions.
"""
from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass, field
from typing import Any

LANGUAGES = ('en', 'ro', 'de')
LIST_SIZE = 30000          # the most frequent words of each language
MAX_HISTORY_WORDS = 2000   # a user's history keeps its most used words and pairs
MAX_HISTORY_PAIRS = 4000
MAX_TEXT = 500             # the say limit (protocol.MAX_SAY_CHARS)
_CEDILLA = str.maketrans({'ş': 'ș', 'ţ': 'ț', 'Ş': 'Ș', 'Ţ': 'Ț'})
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_LETTER_AT_END = re.compile(r"[^\W\d_]['’-]?$")


def normalise(text: str) -> str:
    """``text`` with Romanian cedilla letters as the comma-below ones."""
    return text.translate(_CEDILLA)


def words_of(text: str) -> list[str]:
    """The words of ``text``, normalised and lower-cased."""
    return [w.lower() for w in _WORD.findall(normalise(text))]


class WordList:
    """One language's frequency list: rank order plus a sorted copy for prefix search."""

    def __init__(self, words: list[str]) -> None:
        self.ranked = [w for w in dict.fromkeys(normalise(w) for w in words) if _WORD.fullmatch(w)]
        self.rank = {w: i for i, w in enumerate(self.ranked)}
        self.sorted = sorted(self.ranked)

    def starting_with(self, prefix: str, limit: int) -> list[str]:
        """The most frequent words that start with ``prefix`` (longer than it)."""
        lo = bisect.bisect_left(self.sorted, prefix)
        hi = bisect.bisect_left(self.sorted, prefix + '\U0010ffff', lo)
        found = [w for w in self.sorted[lo:hi] if w != prefix]
        found.sort(key=self.rank.__getitem__)
        return found[:limit]


_lists: dict[str, WordList] = {}
_lists_lock = threading.Lock()


def word_list(lang: str) -> WordList:
    """The word list of ``lang`` (one of ``LANGUAGES``), loaded once from ``wordfreq``;
    RuntimeError when that is not installed.
    """
    if lang not in LANGUAGES:
        raise ValueError(f'unknown language {lang!r}: one of {", ".join(LANGUAGES)}')
    with _lists_lock:
        if lang not in _lists:
            try:
                import wordfreq  # imported here: loading the lists takes a moment
            except ImportError:
                raise RuntimeError('word prediction needs the wordfreq package '
                                   '(scripts/requirements-robot.txt)') from None

            _lists[lang] = WordList(wordfreq.top_n_list(lang, LIST_SIZE))
            # wordfreq keeps the language's whole frequency list cached (tens of MB): only ours stays
            for cached in (wordfreq.top_n_list, wordfreq.get_frequency_list, wordfreq.get_frequency_dict):
                cached.cache_clear()
        return _lists[lang]


@dataclass
class History:
    """What a user said before: word counts and word-pair counts (``"a b"``), bounded."""

    words: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)

    def learn(self, text: str) -> None:
        """Count the words and word pairs of ``text``."""
        words = words_of(text)
        for word in words:
            self.words[word] = self.words.get(word, 0) + 1
        for first, second in zip(words, words[1:]):
            pair = f'{first} {second}'
            self.pairs[pair] = self.pairs.get(pair, 0) + 1
        self.words = _bounded(self.words, MAX_HISTORY_WORDS)
        self.pairs = _bounded(self.pairs, MAX_HISTORY_PAIRS)

    def to_json(self) -> dict[str, Any]:
        return {'words': self.words, 'pairs': self.pairs}

    @classmethod
    def from_json(cls, data: Any) -> History:
        """The history saved by ``to_json`` (an empty one for anything else)."""
        if not isinstance(data, dict):
            return cls()
        return cls(*({str(k): int(v) for k, v in (data.get(part) or {}).items()
                      if isinstance(v, int) and not isinstance(v, bool)}
                     for part in ('words', 'pairs')))


def _bounded(counts: dict[str, int], limit: int) -> dict[str, int]:
    if len(counts) <= limit:
        return counts
    return dict(sorted(counts.items(), key=lambda item: -item[1])[:limit])


def _cased_like(word: str, typed: str) -> str:
    if typed[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def predict(lang: str, text: str, history: History | None = None, limit: int = 6) -> dict[str, Any]:
    """Suggestions for ``text`` (typed so far): ``{"prefix", "completions", "next"}``.

    When ``text`` ends inside a word, ``prefix`` is that word and ``completions`` the words
    it may become; ``next`` is what may follow the last whole word (or start a sentence).
    The user's history ranks above the word list. ValueError for an unknown language.
    """
    words = word_list(lang)
    history = history or History()
    text = normalise(text)
    typing = bool(_LETTER_AT_END.search(text))
    found = _WORD.findall(text)
    prefix = found[-1] if typing and found else ''
    before = found[:-1] if prefix else found
    previous = before[-1].lower() if before and not re.search(r'[.!?]\s*$', text) else ''
    result: dict[str, Any] = {'prefix': prefix, 'completions': [], 'next': []}
    if prefix:
        low = prefix.lower()
        mine = sorted((w for w in history.words if w.startswith(low) and w != low),
                      key=lambda w: (-history.words[w], w))
        # wordfreq's German list spells ß as ss: look it up so, keep what was typed
        key = low.replace('ß', 'ss') if lang == 'de' else low
        listed = [low + w[len(key):] for w in words.starting_with(key, limit)]
        result['completions'] = [_cased_like(w, prefix) for w in _merged(mine, listed, limit)]
        return result
    mine = []
    if previous:
        after = {pair.split(' ', 1)[1]: n for pair, n in history.pairs.items()
                 if pair.startswith(previous + ' ')}
        mine = sorted(after, key=lambda w: (-after[w], w))
    common = [w for w in words.ranked[:limit + 1] if w != previous]
    result['next'] = _merged(mine, common, limit)
    if not previous:  # a sentence starts
        result['next'] = [_cased_like(w, 'A') if not w.isupper() else w for w in result['next']]
    return result


def _merged(first: list[str], then: list[str], limit: int) -> list[str]:
    return list(dict.fromkeys([*first, *then]))[:limit]
