"""The real speaker_node speaking in en, ro and de, with Piper or espeak-ng, and stopping:
checked by the audio its WAV file sink holds.
"""
from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from std_msgs.msg import Empty, String

from havatar_drivers.audio.voices import EspeakEngine, PiperEngine, installed_piper_models
from havatar_msgs.msg import Speech
from havatar_testing import ros_executable, wait_until
from havatar_testing.speech import RATE, SinkWatch, loudness, same_speech, start_speaker

ROMANIAN = 'Știință și țară, într-o căsuță în pădure, mâine.'  # one piece: spoken as one
JOE = 'en_US-joe-medium'


def speaker_status(msg: DiagnosticArray) -> dict:
    """The speaker status of a /diagnostics message as {'level', 'message', values...}, or {}."""
    for status in msg.status:
        if status.name.endswith(': speaker'):
            return {'level': status.level, 'message': status.message,
                    **{kv.key: kv.value for kv in status.values}}
    return {}


@pytest.fixture
def speaker(processes, ros_node, tmp_path):
    """Start a speaker node with ``params``; returns (sink, publish(Speech|String|Empty), diagnostics)."""
    def start(*params: str):
        wav_path = tmp_path / 'speech.wav'
        start_speaker(processes, wav_path, *params)
        publishers = {kind: ros_node.node.create_publisher(kind, topic, 10)
                      for kind, topic in ((Speech, 'speech'), (String, 'say'), (Empty, 'stop_speaking'))}
        for publisher in publishers.values():
            ros_node.wait_for_subscribers(publisher)
        diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
        return SinkWatch(wav_path), lambda msg: publishers[type(msg)].publish(msg), diagnostics
    return start


def test_the_sink_holds_speech_in_en_ro_and_de_each_spoken_in_its_language(speaker):
    sink, publish, _ = speaker('tts_language:=de')
    espeak = EspeakEngine()
    expected = {lang: espeak.synthesize(ROMANIAN, lang, RATE, 1) for lang in ('en', 'ro', 'de')}
    publish(String(data=ROMANIAN))  # 'say' speaks the default language (tts_language)
    assert same_speech(sink.next_segment(), expected['de'])
    for lang in ('ro', 'en', 'de', 'ro'):  # switches at every message, without a restart
        publish(Speech(text=ROMANIAN, language=lang))
        segment = sink.next_segment()
        assert loudness(segment) > 300, f'{lang}: audible speech'
        assert [other for other in expected if same_speech(segment, expected[other])] == [lang]


def test_a_missing_voice_falls_back_to_espeak_with_a_diagnostic_warning(speaker):
    sink, publish, diagnostics = speaker()
    publish(Speech(text=ROMANIAN, language='ro', voice='ro_RO-mihai-medium'))
    warning = diagnostics.wait_for(lambda m: speaker_status(m).get('level') == DiagnosticStatus.WARN,
                                   timeout=20, what='a WARN from the speaker')
    assert "'ro_RO-mihai-medium' is not installed" in speaker_status(warning)['message']
    assert same_speech(sink.next_segment(), EspeakEngine().synthesize(ROMANIAN, 'ro', RATE, 1))
    publish(Speech(text=ROMANIAN, language='ro'))  # spoken as asked: the warning ends
    sink.next_segment()
    diagnostics.wait_for(lambda m: speaker_status(m).get('level') == DiagnosticStatus.OK,
                         timeout=20, what='the speaker OK again')


@pytest.mark.skipif(not (PiperEngine.available() and installed_piper_models()),
                    reason='piper-tts or a Piper voice package is not installed')
def test_the_piper_voice_speaks_when_asked_per_message_or_by_parameter(speaker):
    sink, publish, diagnostics = speaker('tts_engine:=piper')
    text = 'Hello, I am here.'  # one Piper piece (4 words): spoken without a gap
    publish(Speech(text=text, language='en'))  # the preferred engine's English voice
    joe = sink.next_segment(timeout=60)
    status = diagnostics.wait_for(lambda m: speaker_status(m).get('voice') == f'piper {JOE}',
                                  timeout=20, what='the speaker using the Piper voice')
    assert speaker_status(status)['level'] == DiagnosticStatus.OK
    assert loudness(joe) > 300
    espeak_en = EspeakEngine().synthesize(text, 'en', RATE, 1)
    assert not same_speech(joe, espeak_en)
    publish(Speech(text=text, language='en', voice='en'))  # an espeak-ng voice, asked by name
    assert same_speech(sink.next_segment(), espeak_en)
    publish(Speech(text=ROMANIAN, language='ro'))  # Piper has no Romanian voice here: espeak-ng
    assert same_speech(sink.next_segment(), EspeakEngine().synthesize(ROMANIAN, 'ro', RATE, 1))


def test_stop_speaking_cuts_a_long_text_at_once_and_drops_the_queue(speaker):
    sink, publish, _ = speaker()
    long_text = ' '.join(f'This is sentence number {n} of a long text that goes on.' for n in range(1, 40))[:500]
    publish(Speech(text=long_text, language='en'))
    publish(Speech(text='And this one waits in the queue.', language='en'))
    sink.wait_for_start()
    publish(Empty())
    played = sink.wait_quiet(quiet=1.0) / RATE
    assert played < 3.0, f'{played:.1f} s of a ~35 s text played: the stop did not cut it'
    publish(Speech(text='Hello.', language='en'))  # the node still speaks afterwards
    sink.mark = sink.frames()
    assert same_speech(sink.next_segment(), EspeakEngine().synthesize('Hello.', 'en', RATE, 1))


@pytest.mark.parametrize('param,named', [
    ('tts_engine:=festival', 'tts_engine'), ('tts_language:=romanian', 'tts_language'),
    ('tts_voice_ro:=ro+f3', 'tts_voice_ro'), ('tts_piper_threads:=0', 'tts_piper_threads'),
])
def test_a_bad_speech_parameter_stops_the_node_at_start_naming_it(processes, param, named):
    node = processes.start('speaker_node', [ros_executable('havatar_drivers', 'speaker_node'), '--ros-args',
                                            '-p', 'sink:=null', '-p', param])
    wait_until(lambda: not node.running(), timeout=20, what='the speaker node to exit')
    assert named in node.output()
