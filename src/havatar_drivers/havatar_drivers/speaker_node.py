"""ROS 2 speaker node (executable ``speaker_node``): plays audio chunks and speaks text.

Plays ``audio/speaker`` (``havatar_msgs/AudioChunk``, PCM; e.g. the talkback from the web
UI) through a jitter buffer (which drops a chunk now and then to win back the delay a burst
of arrivals added), and speaks, mixed over it, the text of ``say`` (``std_msgs/String``, in
the default language) and of ``speech`` (``havatar_msgs/Speech``: text, language, voice)
with espeak-ng or a Piper voice (``audio/voices.py``); ``stop_speaking``
(``std_msgs/Empty``) cuts the speech. The sink is an ALSA device, a WAV file, or nothing.

It also plays ROS 2 audio_common's types, as ``audio_play`` does: ``audio/speaker/audio``
(``audio_common_msgs/AudioData``) or, with ``standard_input`` 'audio_stamped',
``audio/speaker/audio_stamped`` (``AudioDataStamped``), in the format the latched
``audio/speaker/audio_info`` (``AudioInfo``) gives, else mono at ``sample_rate``; so an
``audio_capture`` node run in the namespace ``audio/speaker`` plays here. One talker at a
time: chunks of two senders at once share one jitter buffer.
"""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from std_msgs.msg import Empty, String

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from havatar_msgs.msg import AudioChunk, Speech

from .audio.jitter_buffer import JitterBuffer
from .audio.pcm import convert, is_s16_pcm, mix
from .audio.playback import AlsaSink, NullSink, Sink, WavFileSink
from .audio.speech import Request, SpeechQueue
from .audio.tts import MAX_TEXT_CHARS
from .audio.voices import ENGINES, ESPEAK, PIPER, Choice, Engine, EspeakEngine, PiperEngine, installed_piper_models
from havatar_common.audio import PCM_RATE
from havatar_common.diagnostics import ERROR, OK, WARN, diagnostic_array
from havatar_common.parameters import ParameterTable, check_choice, declare_parameters
from havatar_common.qos import LATCHED
from havatar_common.spin import spin_node

PARAMETERS: ParameterTable = [
    ('sink', 'alsa', "'alsa' (a playback device), 'file' (append to a WAV file) or 'null'", None),
    ('device', 'default', 'ALSA playback device', None),
    ('file', '/tmp/havatar_speaker.wav', "WAV file of the 'file' sink", None),
    ('sample_rate', PCM_RATE, 'Playback sample rate (Hz); chunks are converted to it', (8000, 192000)),
    ('channels', 1, 'Playback channels', (1, 2)),
    ('jitter_chunks', 3, 'Chunks buffered before playback starts (absorbs arrival jitter)', (1, 50)),
    ('max_buffer_chunks', 25, 'Most chunks held; older ones are dropped beyond it', (2, 500)),
    ('tts_language', 'en', "Language of 'say' and of 'speech' without one (BCP 47: en, ro, de, en-US...)", None),
    ('tts_engine', ESPEAK, "Engine of a language whose voice is not set: 'espeak-ng' or 'piper' (when "
     'installed and it has a voice for the language; espeak-ng otherwise)', None),
    ('tts_voice_en', '', "English voice: a Piper voice (en_US-joe-medium) or an espeak-ng one (en-us); "
     "'' = the engine's", None),
    ('tts_voice_ro', '', "Romanian voice ('' = the engine's; espeak-ng: ro)", None),
    ('tts_voice_de', '', "German voice ('' = the engine's; espeak-ng: de)", None),
    ('tts_piper_dir', '', "Directory of more Piper voices (*.onnx with *.onnx.json), besides the installed "
     "voice packages; '' = none", None),
    ('tts_piper_threads', 1, 'Threads of a Piper synthesis (one leaves the other cores to video)', (1, 16)),
    ('tts_words_per_minute', 160, 'Speaking rate', (80, 450)),
    ('tts_queue', 5, 'Texts waiting to be spoken at most; more are refused', (1, 100)),
    ('standard_input', 'audio', "audio_common input: 'audio' (AudioData on audio/speaker/audio), "
     "'audio_stamped' (AudioDataStamped on audio/speaker/audio_stamped) or 'none'", None),
    ('diagnostics_period', 1.0, 'Seconds between /diagnostics messages', (0.1, 60.0)),
]

TICK_S = 0.005
LANGUAGE = re.compile(r'^[a-z]{2}(-[A-Z]{2})?$')
VOICE = re.compile(r'^[A-Za-z0-9_.-]{0,64}$')


class SpeakerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('speaker_node', **kwargs)
        p = declare_parameters(self, PARAMETERS)
        check_choice('sink', p['sink'], ('alsa', 'file', 'null'))
        check_choice('standard_input', p['standard_input'], ('audio', 'audio_stamped', 'none'))
        self.params = p
        self.rate, self.channels = p['sample_rate'], p['channels']
        self.sink: Sink
        if p['sink'] == 'alsa':
            self.sink = AlsaSink(p['device'], self.rate, self.channels)
        elif p['sink'] == 'file':
            self.sink = WavFileSink(Path(p['file']), self.rate, self.channels)
        else:
            self.sink = NullSink()
        self.jitter = JitterBuffer(p['jitter_chunks'], p['max_buffer_chunks'])
        self._lock = threading.Lock()
        self.voice_warning = ''  # why the latest text was not spoken as asked
        self.engine_used = ''
        self.speech = SpeechQueue(self._engines(p), p['tts_language'], self._voices(p), self.rate,
                                  self.channels, p['tts_queue'], self._on_choice, self._on_tts_error)
        self.played_chunks = 0
        self.dropped_format = 0
        self._stop = threading.Event()
        self.create_subscription(AudioChunk, 'audio/speaker', self._on_chunk, qos_profile_sensor_data)
        self.create_subscription(String, 'say', self._on_say, 10)
        self.standard_info = AudioInfo()  # nothing said yet: the speaker's own format
        self.standard_sequence = 0
        if p['standard_input'] != 'none':
            self.create_subscription(AudioInfo, 'audio/speaker/audio_info', self._on_standard_info, LATCHED)
        if p['standard_input'] == 'audio':
            self.create_subscription(AudioData, 'audio/speaker/audio',
                                     lambda msg: self._on_standard(msg.data), qos_profile_sensor_data)
        elif p['standard_input'] == 'audio_stamped':
            self.create_subscription(AudioDataStamped, 'audio/speaker/audio_stamped',
                                     lambda msg: self._on_standard(msg.audio.data), qos_profile_sensor_data)
        self.create_subscription(Speech, 'speech', self._on_speech, 10)
        self.create_subscription(Empty, 'stop_speaking', lambda _: self.speech.stop(), 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self._threads = [threading.Thread(target=self._play, name='playback', daemon=True),
                         threading.Thread(target=self.speech.run, args=(self._stop,), name='tts', daemon=True)]
        for thread in self._threads:
            thread.start()
        self.get_logger().info(f"playing audio/speaker and 'say' to the {p['sink']} sink")

    def _engines(self, p: dict[str, Any]) -> list[Engine]:
        """The engines in order of preference, espeak-ng last (it speaks what others cannot)."""
        check_choice('tts_engine', p['tts_engine'], ENGINES)
        if not LANGUAGE.match(p['tts_language']):
            raise ValueError(f"parameter tts_language={p['tts_language']!r} must look like en, ro or en-US")
        espeak = EspeakEngine(p['tts_words_per_minute'])
        if not PiperEngine.available():
            if p['tts_engine'] == PIPER:
                self.get_logger().warning('tts_engine is piper but piper-tts is not installed: espeak-ng speaks')
            return [espeak]
        dirs = [Path(p['tts_piper_dir']).expanduser()] if p['tts_piper_dir'] else []
        piper = PiperEngine(installed_piper_models(dirs), p['tts_piper_threads'])
        self.get_logger().info(f"piper voices: {', '.join(sorted(piper.models)) or 'none'}")
        return [piper, espeak] if p['tts_engine'] == PIPER else [espeak, piper]

    @staticmethod
    def _voices(p: dict[str, Any]) -> dict[str, str]:
        voices = {lang: p[f'tts_voice_{lang}'] for lang in ('en', 'ro', 'de')}
        for lang, voice in voices.items():
            if not VOICE.match(voice):
                raise ValueError(f'parameter tts_voice_{lang}={voice!r}: a voice name is letters, digits, _ . -')
        return {lang: voice for lang, voice in voices.items() if voice}

    # -- ROS callbacks
    def _on_chunk(self, msg: AudioChunk) -> None:
        self._push(msg.sequence, bytes(msg.data), msg.format)

    def _on_standard_info(self, msg: AudioInfo) -> None:
        self.standard_info = msg

    def _on_standard(self, data: Any) -> None:
        """An audio_common chunk: numbered here, in arrival order (the type has no number)."""
        self.standard_sequence = (self.standard_sequence + 1) % 2**32
        self._push(self.standard_sequence, bytes(data), self.standard_info)

    def _push(self, sequence: int, data: bytes, fmt: Any) -> None:
        """Queue a chunk described by ``fmt`` (an AudioFormat or an AudioInfo)."""
        if not is_s16_pcm(fmt.coding_format, fmt.sample_format):
            self.dropped_format += 1
            self.get_logger().warning(f'cannot play {fmt.coding_format}/{fmt.sample_format} audio',
                                      throttle_duration_sec=10.0)
            return
        pcm = convert(data, fmt.sample_rate or self.rate, fmt.channels or 1, self.rate, self.channels)
        with self._lock:
            self.jitter.push(sequence, pcm)

    def _on_say(self, msg: String) -> None:
        self._submit(Request(msg.data))

    def _on_speech(self, msg: Speech) -> None:
        if (msg.language and not LANGUAGE.match(msg.language)) or not VOICE.match(msg.voice):
            self.get_logger().warning(f'speech: bad language {msg.language[:20]!r} or voice {msg.voice[:70]!r}: '
                                      'the defaults speak', throttle_duration_sec=10.0)
            self._submit(Request(msg.text))
            return
        self._submit(Request(msg.text, msg.language, msg.voice))

    def _submit(self, request: Request) -> None:
        if len(request.text.strip()) > MAX_TEXT_CHARS:
            self.get_logger().warning(f'say: text cut to {MAX_TEXT_CHARS} characters')
        if not self.speech.submit(request):
            self.get_logger().warning('say: too many texts waiting; this one is dropped')

    # -- threads (the synthesis thread calls these two)
    def _on_choice(self, request: Request, choice: Choice) -> None:
        with self._lock:
            self.voice_warning, self.engine_used = choice.warning, f'{choice.engine.name} {choice.voice}'
        if choice.warning:
            self.get_logger().warning(f'say: {choice.warning}')
            self._publish_diagnostics()  # now, not at the next period: the user asked for that voice

    def _on_tts_error(self, message: str) -> None:
        self.get_logger().error(f'say: {message}')

    def _play(self) -> None:
        """Writes audio to the sink on a sample clock while there is something to play.

        This thread owns the sink, from its first write to ``close``: the ALSA sink's ffmpeg
        dies with the thread that started it, so only this thread may (see ``AlsaSink``).
        """
        try:
            self._play_until_stopped()
        finally:
            self.sink.close()

    def _play_until_stopped(self) -> None:
        frame_bytes = 2 * self.channels
        default_chunk = self.rate // 50 * frame_bytes  # 20 ms when only speech plays
        due = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now < due:
                self._stop.wait(min(TICK_S, due - now))
                continue
            with self._lock:
                chunk = self.jitter.pop(b'')
                size = len(chunk) if chunk else default_chunk
                if chunk == b'':
                    chunk = bytes(size)  # a lost chunk becomes silence
            speech = self.speech.take(size)
            if chunk is None and not speech:
                due = time.monotonic() + TICK_S  # idle
                continue
            speech = speech.ljust(size, b'\0')
            out = mix(chunk, speech) if chunk else speech
            self.sink.write(out)
            self.played_chunks += 1
            due = max(due, now - 0.1) + len(out) / frame_bytes / self.rate

    def _publish_diagnostics(self) -> None:
        s = self.speech
        with self._lock:
            j = self.jitter
            values = {'sink': self.params['sink'], 'buffer_chunks': j.depth, 'playing': j.playing,
                      'underruns': j.underruns, 'late_drops': j.late_drops, 'catch_up_drops': j.catch_up_drops,
                      'overflow_drops': j.overflow_drops, 'concealed': j.concealed,
                      'played_chunks': self.played_chunks, 'texts_spoken': s.spoken,
                      'tts_errors': s.errors, 'speech_stops': s.stopped, 'voice': self.engine_used,
                      'speaking': s.busy or s.buffered > 0,
                      'unsupported_chunks': self.dropped_format}
            warning = self.voice_warning
        level, message = (ERROR, self.sink.error) if self.sink.error else (WARN, warning) if warning else (OK, 'ok')
        self.diag_pub.publish(diagnostic_array(self, 'speaker', str(self.params['device']), level, message,
                                               values))

    def shutdown(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=3)  # the playback thread closes the sink as it ends


def main(args: Optional[list[str]] = None) -> None:
    spin_node(SpeakerNode, 'speaker_node', args)


if __name__ == '__main__':
    main()
