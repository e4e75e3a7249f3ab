"""The speaker node's speech: a queue of texts spoken piece by piece into a buffer the
playback takes from, cut at once by ``stop`` (no ROS).

One thread runs ``run``: it takes a request, chooses its engine and voice (``choose``),
and synthesizes it a piece at a time (``split_for_speech``), appending each piece to the
buffer as soon as it is ready, so the first piece plays while the next is synthesized
(and no further ahead than ``AHEAD_S`` of audio). ``stop`` empties the queue and the
buffer; a piece being synthesized then is thrown away.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

from .tts import MAX_TEXT_CHARS
from .voices import Choice, Engine, choose, split_for_speech

AHEAD_S = 3.0  # seconds of speech synthesized ahead of the playback at most


@dataclass(frozen=True)
class Request:
    text: str
    language: str = ''  # '' = the default language
    voice: str = ''     # '' = the voice for the language


class SpeechQueue:
    def __init__(self, engines: Sequence[Engine], default_language: str, voices: dict[str, str],
                 rate: int, channels: int, size: int = 5,
                 on_choice: Callable[[Request, Choice], None] = lambda request, choice: None,
                 on_error: Callable[[str], None] = lambda message: None) -> None:
        """``engines`` in order of preference, espeak-ng last; ``voices``: language -> voice.

        ``on_choice`` hears who speaks each request (and why not as asked), ``on_error``
        what failed; both are called on the synthesis thread.
        """
        self.engines = list(engines)
        self.default_language = default_language
        self.voices = voices
        self.rate, self.channels = rate, channels
        self.on_choice = on_choice
        self.on_error = on_error
        self._requests: queue.Queue[tuple[int, Request]] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        self._generation = 0  # raised by stop: what was asked before it is not played
        self._buffer = bytearray()
        self.spoken = 0
        self.errors = 0
        self.stopped = 0
        self.busy = False  # a request is being synthesized (or waits for the playback)

    def submit(self, request: Request) -> bool:
        """Queue ``request`` (its text cut to MAX_TEXT_CHARS); False when the queue is full."""
        text = ' '.join(request.text.split())[:MAX_TEXT_CHARS]
        if not text:
            return True
        with self._lock:
            try:
                self._requests.put_nowait((self._generation, Request(text, request.language, request.voice)))
            except queue.Full:
                return False
        return True

    def stop(self) -> None:
        """Cut the speech now: empty the buffer, drop the queue and the piece being made."""
        with self._lock:
            self._generation += 1
            self._buffer.clear()
            self.stopped += 1
            while True:
                try:
                    self._requests.get_nowait()
                except queue.Empty:
                    break

    def take(self, size: int) -> bytes:
        """Up to ``size`` bytes of speech to play now (b'' when silent)."""
        with self._lock:
            out = bytes(self._buffer[:size])
            del self._buffer[:size]
        return out

    @property
    def buffered(self) -> int:
        """Bytes of speech waiting to be played."""
        with self._lock:
            return len(self._buffer)

    def warm(self) -> None:
        """Load the voices of the default language and of ``voices`` now (Piper takes seconds)."""
        for language in {self.default_language, *self.voices}:
            choice = choose(language, '', self.engines, self.default_language, self.voices)
            load = getattr(choice.engine, 'load', None)
            if load is not None:
                try:
                    load(choice.voice)
                except RuntimeError as exc:
                    self.on_error(str(exc))

    def run(self, stopping: threading.Event) -> None:
        """Load the voices, then speak the queued requests until ``stopping`` is set (the
        synthesis thread).
        """
        self.warm()
        while not stopping.is_set():
            try:
                generation, request = self._requests.get(timeout=0.2)
            except queue.Empty:
                continue
            self.busy = True
            try:
                self.speak(generation, request, stopping)
            finally:
                self.busy = self._requests.qsize() > 0

    def speak(self, generation: int, request: Request, stopping: threading.Event) -> None:
        """Synthesize ``request`` piece by piece into the buffer while ``generation`` holds."""
        choice = choose(request.language, request.voice, self.engines, self.default_language, self.voices)
        self.on_choice(request, choice)
        ahead = int(AHEAD_S * self.rate) * 2 * self.channels
        for piece in split_for_speech(request.text, choice.engine.first_words, choice.engine.max_words):
            while self.buffered > ahead and generation == self._generation and not stopping.is_set():
                stopping.wait(0.02)  # far enough ahead: a stop wastes no more work than this
            if stopping.is_set() or generation != self._generation:
                return
            try:
                pcm = choice.engine.synthesize(piece, choice.voice, self.rate, self.channels)
            except RuntimeError as exc:
                self.errors += 1
                self.on_error(str(exc))
                fallback = self.engines[-1]
                if choice.engine is fallback:
                    return
                voice = fallback.voice_for(choice.language) or fallback.voice_for(self.default_language) or 'en'
                choice = Choice(fallback, voice, choice.language, f'{exc}; {fallback.name} {voice!r} spoke instead')
                self.on_choice(request, choice)
                try:
                    pcm = choice.engine.synthesize(piece, choice.voice, self.rate, self.channels)
                except RuntimeError as exc2:
                    self.on_error(str(exc2))
                    return
            with self._lock:
                if generation != self._generation:
                    return
                self._buffer += pcm
        self.spoken += 1
