"""Speech engines and the speech queue without ROS: choosing voices, pieces, stopping."""
from __future__ import annotations

import threading
from typing import Optional

import numpy as np
import pytest

from havatar_drivers.audio.pcm import rms
from havatar_drivers.audio.speech import AHEAD_S, Request, SpeechQueue
from havatar_testing import wait_until
from havatar_drivers.audio.voices import (EspeakEngine, PiperEngine, choose, installed_piper_models,
                                          parse_espeak_voices, split_for_speech)

RATE = 16000
ROMANIAN = 'Știință și țară, într-o căsuță în pădure, mâine.'


class FakeEngine:
    """An engine with the given voices (voice -> language); speaks 0.1 s per word."""

    def __init__(self, name: str, voices: dict[str, str], gate: Optional[threading.Semaphore] = None) -> None:
        self.name = name
        self.first_words, self.max_words = 8, 30
        self.voices = voices
        self.gate = gate  # a permit per piece: the test decides when each piece is ready
        self.spoken: list[tuple[str, str]] = []

    def has_voice(self, voice: str) -> bool:
        return voice in self.voices

    def voice_for(self, language: str) -> Optional[str]:
        return next((v for v, lang in self.voices.items() if lang == language.split('-')[0]), None)

    def synthesize(self, text: str, voice: str, rate: int, channels: int) -> bytes:
        if self.gate is not None:
            assert self.gate.acquire(timeout=10)
        self.spoken.append((text, voice))
        return b'\x01\x00' * (rate // 10) * len(text.split()) * channels


NEURAL = FakeEngine('piper', {'en_US-joe-medium': 'en'})
ESPEAK = FakeEngine('espeak-ng', {'en': 'en', 'ro': 'ro', 'de': 'de'})


@pytest.mark.parametrize('language,voice,engines,voices,expected', [
    ('', '', [ESPEAK, NEURAL], {}, ('espeak-ng', 'en', 'en', '')),
    ('ro', '', [ESPEAK, NEURAL], {}, ('espeak-ng', 'ro', 'ro', '')),
    ('en', '', [NEURAL, ESPEAK], {}, ('piper', 'en_US-joe-medium', 'en', '')),  # preferred engine
    ('de', '', [NEURAL, ESPEAK], {}, ('espeak-ng', 'de', 'de', '')),  # piper has no German
    ('en', 'en_US-joe-medium', [ESPEAK, NEURAL], {}, ('piper', 'en_US-joe-medium', 'en', '')),  # asked
    ('en', '', [ESPEAK, NEURAL], {'en': 'en_US-joe-medium'}, ('piper', 'en_US-joe-medium', 'en', '')),
    ('en-US', '', [ESPEAK, NEURAL], {'en': 'en_US-joe-medium'}, ('piper', 'en_US-joe-medium', 'en-US', '')),
    ('en', 'en_GB-alan-low', [NEURAL, ESPEAK], {}, ('piper', 'en_US-joe-medium', 'en', 'not installed')),
    ('ro', 'ro_RO-mihai-medium', [ESPEAK], {}, ('espeak-ng', 'ro', 'ro', 'not installed')),
    ('fr', '', [NEURAL, ESPEAK], {}, ('espeak-ng', 'en', 'fr', "no voice speaks 'fr'")),
])
def test_choose_the_engine_and_voice(language, voice, engines, voices, expected):
    choice = choose(language, voice, engines, 'en', voices)
    assert (choice.engine.name, choice.voice, choice.language) == expected[:3]
    assert (expected[3] in choice.warning) if expected[3] else choice.warning == ''


@pytest.mark.parametrize('text,pieces', [
    ('', []),
    ('Hello.', ['Hello.']),
    ('Hello there. How are you? Fine!', ['Hello there.', 'How are you?', 'Fine!']),
    ('one two three four five six seven eight nine ten', ['one two three four five six seven eight',
                                                          'nine ten']),
    ('Yes, please come here, I need help right now please.', ['Yes, please come here,',
                                                              'I need help right now please.']),
    ('Hi. ' + 'a b c, ' * 12 + 'end.', ['Hi.', ' '.join(['a b c,'] * 10), 'a b c, a b c, end.']),
    ('Line one\nline two', ['Line one', 'line two']),
])
def test_split_for_speech_makes_a_short_first_piece_and_whole_sentences(text, pieces):
    assert split_for_speech(text) == pieces
    assert ' '.join(pieces).split() == text.split()  # no word lost or added


def test_espeak_voice_listing_gives_languages_names_and_files():
    listing = ('Pty Language       Age/Gender VoiceName          File                 Other Languages\n'
               ' 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)\n'
               ' 5  ro              --/M      Romanian           roa/ro               \n')
    assert set(parse_espeak_voices(listing)) == {'en-gb', 'english_(great_britain)', 'en', 'ro', 'romanian'}


def test_espeak_speaks_en_ro_de_and_romanian_diacritics_as_romanian_sounds():
    espeak = EspeakEngine()
    assert [espeak.voice_for(lang) for lang in ('en', 'ro', 'de', 'en-US', 'xx')] == ['en', 'ro', 'de', 'en-us', None]
    phonemes = espeak.phonemes(ROMANIAN, 'ro')
    # ș -> S, ț -> ts, ă -> @, î/â -> y: each letter is a Romanian sound, not a spelled-out name
    assert 'S' in phonemes and 'ts' in phonemes and '@' in phonemes and 'y' in phonemes, phonemes
    assert '(' not in phonemes, f'a language switch (an unknown letter) in {phonemes!r}'
    english = espeak.phonemes(ROMANIAN, 'en')
    assert 'ts' not in english and english != phonemes
    audio = {lang: espeak.synthesize(ROMANIAN, lang, RATE, 1) for lang in ('en', 'ro', 'de')}
    for lang, pcm in audio.items():
        assert rms(pcm) > 300, f'{lang}: audible'
    assert len({len(pcm) for pcm in audio.values()}) == 3, 'each language speaks the text its own way'


def test_the_queue_plays_the_first_piece_while_the_next_is_made_and_stop_cuts_everything():
    gate = threading.Semaphore(0)
    engine = FakeEngine('espeak-ng', {'en': 'en'}, gate)
    speech = SpeechQueue([engine], 'en', {}, RATE, 1, size=3)
    stopping = threading.Event()
    thread = threading.Thread(target=speech.run, args=(stopping,), daemon=True)
    thread.start()
    try:
        assert speech.submit(Request('One two. Three four five. Six.'))
        assert speech.submit(Request('Queued behind.'))
        gate.release()  # one piece
        wait_until(lambda: speech.buffered > 0, timeout=10, what='the first piece')
        assert engine.spoken == [('One two.', 'en')], 'the first piece is playable before the rest is made'
        first = speech.take(RATE // 10 * 2)
        assert len(first) == RATE // 10 * 2 and rms(first) > 0
        speech.stop()  # while the engine waits to make the second piece
        assert speech.take(10**6) == b''
        for _ in range(5):
            gate.release()
        wait_until(lambda: len(engine.spoken) == 2, timeout=10, what='the second piece made')
        stopping.set()
        thread.join(5)
        assert speech.take(10**6) == b'', 'the piece made after the stop is thrown away'
        assert speech.spoken == 0 and [text for text, _ in engine.spoken] == ['One two.', 'Three four five.']
    finally:
        stopping.set()
        for _ in range(5):
            gate.release()


def test_the_queue_synthesizes_no_further_ahead_of_the_playback_than_it_must():
    engine = FakeEngine('espeak-ng', {'en': 'en'})  # 0.1 s of audio per word, made at once
    speech = SpeechQueue([engine], 'en', {}, RATE, 1)
    stopping = threading.Event()
    thread = threading.Thread(target=speech.run, args=(stopping,), daemon=True)
    thread.start()
    try:
        speech.submit(Request(' '.join(['Ten words in this sentence make one second of speech.'] * 20)))
        wait_until(lambda: speech.buffered >= AHEAD_S * RATE * 2, timeout=10, what='the look-ahead')
        made = len(engine.spoken)
        assert made < 20, 'it waits for the playback instead of making all 20 pieces'
        speech.take(int(AHEAD_S * RATE) * 2)  # the playback takes what was ahead
        wait_until(lambda: len(engine.spoken) > made, timeout=10, what='the next piece')
        speech.stop()
        wait_until(lambda: not speech.busy, timeout=10, what='the queue idle after the stop')
        assert len(engine.spoken) < 20
    finally:
        stopping.set()
        thread.join(5)


def test_a_full_queue_refuses_more_texts():
    speech = SpeechQueue([ESPEAK], 'en', {}, RATE, 1, size=2)
    assert speech.submit(Request('a')) and speech.submit(Request('b'))
    assert not speech.submit(Request('c'))
    speech.stop()
    assert speech.submit(Request('d'))


def test_a_failing_engine_falls_back_to_espeak():
    class Broken(FakeEngine):
        def synthesize(self, text: str, voice: str, rate: int, channels: int) -> bytes:
            raise RuntimeError('model file is corrupt')
    choices, errors = [], []
    speech = SpeechQueue([Broken('piper', {'p': 'en'}), ESPEAK], 'en', {}, RATE, 1,
                         on_choice=lambda r, c: choices.append(c), on_error=errors.append)
    speech.speak(0, Request('Hello there.'), threading.Event())
    assert [c.engine.name for c in choices] == ['piper', 'espeak-ng'] and 'corrupt' in choices[-1].warning
    assert errors == ['model file is corrupt'] and speech.buffered > 0


piper_voices = installed_piper_models() if PiperEngine.available() else []


@pytest.mark.skipif(not piper_voices, reason='piper-tts or a Piper voice package is not installed')
def test_piper_speaks_with_the_installed_voice_package():
    piper = PiperEngine(piper_voices)
    assert piper.voice_for('en') == 'en_US-joe-medium' and piper.voice_for('ro') is None
    pcm = piper.synthesize('Hello, I am the robot.', 'en_US-joe-medium', RATE, 1)
    samples = np.frombuffer(pcm, '<i2')
    assert 0.5 < len(samples) / RATE < 5 and rms(pcm) > 300
    with pytest.raises(RuntimeError):
        piper.synthesize('x', 'en_GB-missing', RATE, 1)

