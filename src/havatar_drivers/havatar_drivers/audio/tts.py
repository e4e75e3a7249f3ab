"""Text to speech with the local espeak-ng (no cloud service)."""
from __future__ import annotations

import signal
import subprocess

from havatar_common.lifetime import preexec
from .pcm import convert, read_wav

MAX_TEXT_CHARS = 500


def synthesize(text: str, rate: int, channels: int = 1, voice: str = 'en',
               words_per_minute: int = 160, espeak: str = 'espeak-ng') -> bytes:
    """Speak ``text`` into S16LE PCM at ``rate``/``channels``; raises RuntimeError on failure."""
    text = ' '.join(text.split())[:MAX_TEXT_CHARS]
    if not text:
        return b''
    # argv list, text after '--': nothing the user typed reaches a shell or an option
    argv = [espeak, '--stdout', '-v', voice, '-s', str(words_per_minute), '--', text]
    try:  # run() waits for espeak-ng (and kills it on timeout): the calling thread outlives it
        result = subprocess.run(argv, capture_output=True, timeout=30, check=False,
                                preexec_fn=preexec(signal.SIGKILL))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f'espeak-ng failed: {exc}') from None
    if result.returncode != 0:
        raise RuntimeError(f'espeak-ng failed: {result.stderr.decode(errors="replace").strip()[:200]}')
    frames, wav_rate, wav_channels = read_wav(result.stdout)
    return convert(frames, wav_rate, wav_channels, rate, channels)
