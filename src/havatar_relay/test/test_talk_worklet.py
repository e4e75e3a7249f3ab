"""web/talk-worklet.js under node: whatever the AudioContext's rate, the robot gets 20 ms
frames of 48 kHz S16LE with the tone's pitch and level kept (no browser needed).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
WORKLET = HERE.parent / 'havatar_relay' / 'web' / 'talk-worklet.js'
NODE = shutil.which('node')


@pytest.mark.skipif(NODE is None, reason='node is not installed')
@pytest.mark.parametrize('in_rate', [48000, 44100, 96000, 16000])
def test_capture_frames_are_48k_with_the_pitch_and_level_kept(in_rate):
    out = json.loads(subprocess.run([NODE, HERE / 'js' / 'talk_worklet_sim.mjs', WORKLET, str(in_rate), '440', '2'],
                                    check=True, capture_output=True, text=True, timeout=60).stdout)
    x = np.array(out['samples'], dtype=np.float64)
    assert len(x) == out['frames'] * 960
    assert abs(out['frames'] - 100) <= 1, out['frames']  # 2 s = 100 frames of 20 ms
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    peak = np.argmax(spectrum) * 48000 / len(x)
    assert abs(peak - 440) < 2, peak
    assert abs(np.sqrt(np.mean(x ** 2)) / 32767 - 0.5 / np.sqrt(2)) < 0.01
    assert all(abs(level - 0.354) < 0.01 for level in out['levels'][1:])
