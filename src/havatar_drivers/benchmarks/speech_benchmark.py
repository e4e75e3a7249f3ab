"""Benchmark of the speaker node's time to first sound of a long text, per engine.

    . scripts/env.sh && python src/havatar_drivers/benchmarks/speech_benchmark.py [--runs 10]

For each engine (espeak-ng; Piper with the installed voice package, when there is one) a
speaker_node plays into a WAV file sink; each run publishes a long English text on
``speech`` and times the sink's first growth (the first sound written), then sends
``stop_speaking`` and waits for quiet. The goal: p50 under 300 ms. Baseline in the same
run, in this process with the same engine: synthesizing the whole text at once (when the
first sound would come without speaking piece by piece) and the first piece alone.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from std_msgs.msg import Empty  # noqa: E402

from havatar_drivers.audio.voices import (ESPEAK, PIPER, Engine, EspeakEngine, PiperEngine,  # noqa: E402
                                          installed_piper_models, split_for_speech)
from havatar_msgs.msg import Speech  # noqa: E402
from havatar_testing import ProcessManager, RosTestNode  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment  # noqa: E402
from havatar_testing.speech import RATE, SinkWatch, start_speaker  # noqa: E402

TEXT = ('Good morning, everybody, and thank you for coming to see me today. I would like to tell you '
        'about the garden behind the house, where the roses are blooming again this year. Could '
        'somebody please open the window a little? It is getting warm in here, and I would love to '
        'hear the birds while we talk. Afterwards we can have some tea together in the kitchen.')


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def in_process(engine: Engine, voice: str, runs: int) -> tuple[list[float], list[float]]:
    """Seconds to synthesize the whole text, and its first piece, with ``engine``."""
    first = split_for_speech(TEXT, engine.first_words)[0]
    engine.synthesize('ready', voice, RATE, 1)  # loads a Piper model
    whole, piece = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine.synthesize(TEXT, voice, RATE, 1)
        whole.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        engine.synthesize(first, voice, RATE, 1)
        piece.append(time.perf_counter() - t0)
    return whole, piece


def node_first_sound(pm: ProcessManager, node: RosTestNode, work: Path, engine: str, runs: int) -> list[float]:
    """Seconds from publishing the text to the speaker node's first sound, ``runs`` times."""
    wav = work / f'{engine}.wav'
    start_speaker(pm, wav, f'tts_engine:={engine}')
    speech = node.node.create_publisher(Speech, 'speech', 10)
    stop = node.node.create_publisher(Empty, 'stop_speaking', 10)
    node.wait_for_subscribers(speech)
    node.wait_for_subscribers(stop)
    sink = SinkWatch(wav)
    diagnostics = node.subscribe(DiagnosticArray, '/diagnostics')
    speech.publish(Speech(text='ready', language='en'))  # the voice is loaded and heard
    sink.wait_for_start(timeout=120)
    sink.mark = sink.wait_quiet()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        speech.publish(Speech(text=TEXT, language='en'))
        while sink.frames() <= sink.mark:
            if time.perf_counter() - t0 > 60:
                raise TimeoutError(f'{engine}: no sound within 60 s')
            time.sleep(0.002)
        times.append(time.perf_counter() - t0)
        stop.publish(Empty())
        sink.mark = sink.wait_quiet(quiet=1.0)
        diagnostics.clear()  # each run starts idle: the piece being made at the stop is done
        diagnostics.wait_for(lambda m: any(kv.key == 'speaking' and kv.value == 'False'
                                           for s in m.status for kv in s.values), timeout=60)
    pm.stop_all()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=10, help='texts per engine')
    options = parser.parse_args()
    engines: list[tuple[str, Engine, str]] = [(ESPEAK, EspeakEngine(), 'en')]
    models = installed_piper_models() if PiperEngine.available() else []
    piper = PiperEngine(models)
    if piper.voice_for('en'):
        engines.append((PIPER, piper, str(piper.voice_for('en'))))
    else:
        print('piper: not installed or no English voice; skipped')
    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    work = Path(tempfile.mkdtemp(prefix='havatar-speech-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    node = RosTestNode(lease.domain_id, 'speech_benchmark')
    print(f'time to first sound of a {len(TEXT)}-character text; {options.runs} runs (ms)')
    print(f'{"engine":10} {"voice":18} {"what":34} {"p50":>7} {"p90":>7} {"max":>7}  first piece')
    try:
        for name, engine, voice in engines:
            first = node_first_sound(pm, node, work, name, options.runs)
            whole, piece = in_process(engine, voice, options.runs)
            for what, values in (('speaker_node: publish -> sound', first),
                                 ('baseline: whole text synthesized', whole),
                                 ('in process: first piece', piece)):
                ms = [v * 1000 for v in values]
                print(f'{name:10} {voice:18} {what:34} {statistics.median(ms):7.0f} '
                      f'{percentile(ms, 90):7.0f} {max(ms):7.0f}  {split_for_speech(TEXT, engine.first_words)[0]!r}')
    finally:
        node.close()
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
