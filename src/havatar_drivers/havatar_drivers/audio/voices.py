"""Speech engines behind one small interface, and which engine and voice speak a request.

Pure (no ROS): ``EspeakEngine`` (espeak-ng, always there), ``PiperEngine`` (Piper neural
voices from installed voice packages, when piper-tts is installed), ``choose`` (language
and voice of a request -> engine, voice, and a warning when the asked voice is missing),
and ``split_for_speech`` (sentences, the first one short, so speech starts soon).
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Optional, Protocol, Sequence

from havatar_common.lifetime import preexec
from .pcm import convert
from .tts import MAX_TEXT_CHARS, synthesize as espeak_synthesize

ESPEAK = 'espeak-ng'
PIPER = 'piper'
ENGINES = (ESPEAK, PIPER)


def base_language(language: str) -> str:
    """'en-US' -> 'en'."""
    return language.split('-')[0].lower()


class Engine(Protocol):
    """A speech engine: its voices and a blocking ``synthesize`` into S16LE PCM."""

    name: str
    first_words: int  # words of a text's first piece: the shorter, the sooner it sounds
    max_words: int    # words of a piece at most (what a stop may still wait for)

    def has_voice(self, voice: str) -> bool:
        """Whether ``voice`` is one of this engine's voice names."""

    def voice_for(self, language: str) -> Optional[str]:
        """This engine's voice for ``language`` ('ro', 'en-US'), or None if it has none."""

    def synthesize(self, text: str, voice: str, rate: int, channels: int) -> bytes:
        """Speak ``text`` with ``voice`` at ``rate``/``channels``; RuntimeError on failure."""


class EspeakEngine:
    """espeak-ng through its command line: voices are its language codes ('en', 'ro', 'en-us')
    and voice names.
    """

    name = ESPEAK
    first_words = 8
    max_words = 30

    def __init__(self, words_per_minute: int = 160, espeak: str = 'espeak-ng') -> None:
        self.words_per_minute = words_per_minute
        self.espeak = espeak
        self._voices: Optional[set[str]] = None

    @property
    def voices(self) -> set[str]:
        if self._voices is None:
            self._voices = set(parse_espeak_voices(self._run(['--voices'])))
        return self._voices

    def has_voice(self, voice: str) -> bool:
        return voice.lower() in self.voices

    def voice_for(self, language: str) -> Optional[str]:
        for candidate in (language.lower(), base_language(language)):
            if candidate in self.voices:
                return candidate
        return None

    def synthesize(self, text: str, voice: str, rate: int, channels: int) -> bytes:
        return espeak_synthesize(text, rate, channels, voice=voice.lower(),
                                 words_per_minute=self.words_per_minute, espeak=self.espeak)

    def phonemes(self, text: str, voice: str) -> str:
        """espeak-ng's phoneme mnemonics for ``text`` (what it would say, without audio)."""
        return self._run(['-q', '-x', '-v', voice.lower(), '--', ' '.join(text.split())])

    def _run(self, args: list[str]) -> str:
        try:
            result = subprocess.run([self.espeak, *args], capture_output=True, timeout=30, check=False,
                                    preexec_fn=preexec(signal.SIGKILL))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f'espeak-ng failed: {exc}') from None
        if result.returncode != 0:
            raise RuntimeError(f'espeak-ng failed: {result.stderr.decode(errors="replace").strip()[:200]}')
        return result.stdout.decode(errors='replace')


def parse_espeak_voices(listing: str) -> Iterable[str]:
    """Names ``espeak-ng -v`` takes, from its ``--voices`` listing: each line's language, voice
    name, file name ('gmw/en' -> 'en') and other languages ('(en 2)').
    """
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            yield from (fields[1].lower(), fields[3].lower(), fields[4].rsplit('/', 1)[-1].lower())
            yield from (m.lower() for m in re.findall(r'\(([\w-]+) \d+\)', ' '.join(fields[5:])))


@dataclass(frozen=True)
class PiperModel:
    """An installed Piper voice: its name ('en_US-joe-medium'), language ('en-US'), files."""

    name: str
    language: str
    model: Path
    config: Path


def piper_model(model: Path) -> Optional[PiperModel]:
    """The voice of an ``.onnx`` file with its ``.onnx.json`` beside it, or None."""
    config = model.with_name(model.name + '.json')
    try:
        code = json.loads(config.read_text())['language']['code']
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return PiperModel(model.name[:-len('.onnx')], str(code).replace('_', '-'), model, config)


def installed_piper_models(directories: Sequence[Path] = ()) -> list[PiperModel]:
    """Voices in Python packages that ship a Piper model (``*-piper-voice``), then ``directories``."""
    paths: list[Path] = []
    for dist in metadata.distributions():
        name = (dist.metadata['Name'] or '').lower().replace('_', '-')
        if 'piper-voice' in name:
            paths += [Path(str(dist.locate_file(f))) for f in dist.files or () if str(f).endswith('.onnx')]
    for directory in directories:
        paths += sorted(Path(directory).glob('*.onnx'))
    models = [m for m in map(piper_model, paths) if m is not None]
    return list({m.name: m for m in models}.values())


class PiperEngine:
    """Piper neural voices (piper-tts), loaded on first use and kept; ``threads`` is
    onnxruntime's per synthesis (one is faster than several on a busy machine).
    """

    name = PIPER
    first_words = 4  # Piper takes ~4x espeak-ng's time per word
    max_words = 12

    def __init__(self, models: Sequence[PiperModel], threads: int = 1) -> None:
        self.models = {m.name: m for m in models}
        self.threads = threads
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        """Whether piper-tts can be imported."""
        try:
            import piper  # noqa: F401
        except ImportError:
            return False
        return True

    def has_voice(self, voice: str) -> bool:
        return voice in self.models

    def voice_for(self, language: str) -> Optional[str]:
        for match in (lambda m: m.language.lower() == language.lower(),
                      lambda m: base_language(m.language) == base_language(language)):
            for model in self.models.values():
                if match(model):
                    return model.name
        return None

    def load(self, voice: str) -> Any:
        """The loaded ``PiperVoice`` of ``voice`` (loading takes seconds: do it early)."""
        with self._lock:
            if voice not in self._loaded:
                self._loaded[voice] = self._load(self.models[voice])
            return self._loaded[voice]

    def _load(self, model: PiperModel) -> Any:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = self.threads
        try:
            return PiperVoice(config=PiperConfig.from_dict(json.loads(model.config.read_text())),
                              session=onnxruntime.InferenceSession(str(model.model), sess_options=options,
                                                                   providers=['CPUExecutionProvider']))
        except Exception as exc:  # onnxruntime raises its own types
            raise RuntimeError(f'piper cannot load {model.name}: {exc}') from None

    def synthesize(self, text: str, voice: str, rate: int, channels: int) -> bytes:
        if voice not in self.models:
            raise RuntimeError(f'piper has no voice {voice!r}')
        piper_voice = self.load(voice)
        text = ' '.join(text.split())[:MAX_TEXT_CHARS]
        try:
            pcm = b''.join(chunk.audio_int16_bytes for chunk in piper_voice.synthesize(text))
        except Exception as exc:
            raise RuntimeError(f'piper failed: {exc}') from None
        return convert(pcm, piper_voice.config.sample_rate, 1, rate, channels)


@dataclass(frozen=True)
class Choice:
    """Who speaks a request: the engine, its voice, the language, and why not as asked."""

    engine: Engine
    voice: str
    language: str
    warning: str = ''


def choose(language: str, voice: str, engines: Sequence[Engine], default_language: str,
           voices: dict[str, str]) -> Choice:
    """The engine and voice for a request in ``language`` ('' = ``default_language``) with
    ``voice`` ('' = ``voices`` of the language, else the first of ``engines`` that has one).

    ``engines`` is in order of preference and ends with espeak-ng, which speaks whatever
    the others cannot; a voice or language no engine has falls back to it with a warning.
    """
    language = language or default_language
    fallback = engines[-1]
    voice = voice or voices.get(language, '') or voices.get(base_language(language), '')
    warning = ''
    if voice:
        for engine in engines:
            if engine.has_voice(voice):
                return Choice(engine, voice, language)
        warning = f'voice {voice!r} is not installed'
    for engine in engines:
        found = engine.voice_for(language)
        if found is not None:
            if warning:
                warning += f'; {engine.name} {found!r} spoke instead'
            return Choice(engine, found, language, warning)
    found = fallback.voice_for(default_language) or default_language
    warning = (warning + '; ' if warning else '') + \
        f'no voice speaks {language!r}; {fallback.name} {found!r} spoke instead'
    return Choice(fallback, found, language, warning)


_SENTENCE_END = re.compile(r'(?<=[.!?;:…])\s+|\n+')
_CLAUSE_END = re.compile(r'(?<=[,;:])\s+')


def split_for_speech(text: str, first_words: int = 8, max_words: int = 30) -> list[str]:
    """``text`` in pieces to synthesize one after the other: its sentences, long ones cut at
    commas (clauses joined again up to ``max_words``; a longer clause is cut after
    ``max_words``), the first piece at most ``first_words`` words so the first sound comes soon.
    """
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        current: list[str] = []
        for clause in _CLAUSE_END.split(sentence):
            words = clause.split()
            while words:
                limit = first_words if not pieces else max_words
                if current and len(current) + len(words) > limit:
                    pieces.append(' '.join(current))
                    current = []
                    continue
                room = limit - len(current)
                current += words[:room]
                words = words[room:]
                if words:
                    pieces.append(' '.join(current))
                    current = []
        if current:
            pieces.append(' '.join(current))
    return pieces
