"""16-bit PCM helpers (pure numpy): tones, format conversion, WAV files."""
from __future__ import annotations

import io
import wave

import numpy as np

SAMPLE_WIDTH = 2  # S16LE
# coding_format values meaning raw PCM: Havatar's AudioFormat ("pcm") and audio_common's
# AudioInfo ("wave", as audio_capture writes it for raw samples); '' = not said
PCM_CODINGS = ('', 'pcm', 'wave')


def is_s16_pcm(coding_format: str, sample_format: str) -> bool:
    """Whether a stream so described is raw S16LE PCM, the only kind played."""
    return coding_format.lower() in PCM_CODINGS and sample_format.upper() in ('', 'S16LE')


def tone(frequency: float, rate: int, start: int, count: int, channels: int = 1,
         amplitude: float = 0.3) -> bytes:
    """``count`` frames of a sine tone starting at frame ``start`` (phase-continuous)."""
    t = (np.arange(start, start + count) / rate)
    samples = (np.sin(2 * np.pi * frequency * t) * amplitude * 32767).astype('<i2')
    return np.repeat(samples, channels).tobytes() if channels > 1 else samples.tobytes()


def convert(data: bytes, rate: int, channels: int, to_rate: int, to_channels: int) -> bytes:
    """Convert S16LE PCM between rates (linear interpolation) and channel counts."""
    samples = np.frombuffer(data[:len(data) - len(data) % (2 * channels)], dtype='<i2')
    frames = samples.reshape(-1, channels).astype(np.float32)
    mono = frames.mean(axis=1)
    if rate != to_rate and len(mono):
        count = int(round(len(mono) * to_rate / rate))
        mono = np.interp(np.arange(count) * rate / to_rate, np.arange(len(mono)), mono)
    out = np.clip(np.round(mono), -32768, 32767).astype('<i2')
    return np.repeat(out, to_channels).tobytes() if to_channels > 1 else out.tobytes()


def mix(a: bytes, b: bytes) -> bytes:
    """Sum two equally long S16LE buffers with clipping."""
    x = np.frombuffer(a, dtype='<i2').astype(np.int32) + np.frombuffer(b, dtype='<i2')
    return np.clip(x, -32768, 32767).astype('<i2').tobytes()


def rms(data: bytes) -> float:
    samples = np.frombuffer(data, dtype='<i2').astype(np.float64)
    return float(np.sqrt(np.mean(samples ** 2))) if len(samples) else 0.0


def read_wav(data: bytes) -> tuple[bytes, int, int]:
    """(S16LE frames, sample rate, channels) of a 16-bit WAV file's bytes."""
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError(f'need 16-bit WAV, got {8 * wav.getsampwidth()}-bit')
        return wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels()
