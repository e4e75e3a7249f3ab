"""The person talks to the robot: in headless Chromium, the fake microphone's tone reaches the
speaker node (file sink) through the robot's own server in local mode, by holding the talk
button and by dwelling on it (a dwell toggles talking on and off); and in server mode the
cloud page's talk button (behind the shipped Caddyfile) publishes it with WHIP at its own
origin to MediaMTX (authorized by the relay), from where the streaming node puts it on
``audio/speaker``.
"""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data

from havatar_bringup.processes import wait_until
from havatar_msgs.msg import AudioChunk, StreamStatus
from havatar_testing import ros_executable
from havatar_testing.relay import LOCAL_TOKEN as TOKEN

pytest.importorskip('playwright.sync_api')
TONE_HZ = 880.0
RATE = 48000


def write_tone(path: Path, frequency: float, seconds: float = 30.0, amplitude: float = 0.5) -> None:
    t = np.arange(int(seconds * RATE)) / RATE
    samples = (np.sin(2 * np.pi * frequency * t) * amplitude * 32767).astype('<i2')
    with wave.open(str(path), 'wb') as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.tobytes())


def dominant_frequency(pcm: bytes, rate: int) -> tuple[float, float]:
    """(peak frequency in Hz, RMS) of the loud part of S16LE mono ``pcm``."""
    x = np.frombuffer(pcm, dtype='<i2').astype(np.float64)
    loud = np.flatnonzero(np.abs(x) > 300)
    x = x[loud[0]:loud[-1] + 1] if len(loud) else x[:0]
    if len(x) < rate // 10:
        return 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x)), float(np.sqrt(np.mean(x ** 2)))


@pytest.fixture
def browser(launch_chromium, tmp_path):
    """Chromium whose fake microphone plays a TONE_HZ tone."""
    capture = tmp_path / 'microphone.wav'
    write_tone(capture, TONE_HZ)
    return launch_chromium(autoplay=False, microphone=capture)


@pytest.fixture
def speaker(processes, tmp_path):
    """The speaker node with its file sink; returns the WAV file it writes."""
    path = tmp_path / 'speaker.wav'
    node = processes.start('speaker_node', [
        ros_executable('havatar_drivers', 'speaker_node'), '--ros-args', '-p', 'sink:=file',
        '-p', f'file:={path}'])
    node.wait_for_output('playing audio/speaker', timeout=20)
    return path


def played(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (RATE, 1)
        return wav.readframes(wav.getnframes())


def test_the_browsers_microphone_reaches_the_speaker_in_local_mode(relay_robot, speaker, ros_node, browser):
    chunks = ros_node.subscribe(AudioChunk, 'audio/speaker', qos_profile_sensor_data)
    _, base, _, _ = relay_robot()
    page = browser.new_page(viewport={'width': 1280, 'height': 900})
    errors: list[str] = []
    page.on('pageerror', lambda exc: errors.append(str(exc)))
    page.on('console', lambda m: errors.append(f'{m.text} ({m.location.get("url")})')
            if m.type == 'error' and ('talk' in m.location.get('url', '') or 'Failed to load' not in m.text)
            else None)  # resources of others (the MJPEG of a streaming node not started here) aside
    page.on('requestfailed', lambda r: errors.append(f'failed: {r.url}') if '/talk' in r.url else None)
    page.on('response', lambda r: errors.append(f'{r.status} {r.url}') if r.status >= 400 and 'talk' in r.url else None)
    page.goto(f'{base}/#robot=robot1&token={TOKEN}')
    page.wait_for_function("document.getElementById('connection').textContent === 'connected'", timeout=15000)
    page.locator('body').click(position={'x': 5, 'y': 5})  # the page's first click lets audio run
    ros_node.wait_for_publishers('audio/speaker')

    # hold to talk: the tone arrives while the button is held, and stops with the release
    ptt = page.locator('#ptt').bounding_box()
    page.mouse.move(ptt['x'] + ptt['width'] / 2, ptt['y'] + ptt['height'] / 2)
    page.mouse.down()
    chunks.wait_for(lambda m: True, timeout=10)
    wait_until(lambda: len(chunks.messages) >= 75, 10, '1.5 s of talk on audio/speaker')
    assert page.get_attribute('#ptt', 'aria-pressed') == 'true'
    page.mouse.up()
    page.wait_for_function("document.getElementById('ptt').getAttribute('aria-pressed') === 'false'")
    first = chunks.messages[0]
    assert (first.format.sample_rate, first.format.channels, first.format.coding_format,
            first.format.sample_format) == (RATE, 1, 'pcm', 'S16LE')
    assert first.header.frame_id == 'talk'
    assert all(len(m.data) == 1920 for m in chunks.messages), 'frames of 20 ms'
    sequences = [m.sequence for m in chunks.messages]
    assert sequences == sorted(sequences)

    received = b''.join(bytes(m.data) for m in chunks.messages)
    frequency, level = dominant_frequency(received, RATE)
    print(f'topic: {len(chunks.messages)} chunks, peak {frequency:.1f} Hz, RMS {level:.0f}')
    assert abs(frequency - TONE_HZ) < 5 and level > 1000, (frequency, level)
    wait_until(lambda: len(played(speaker)) >= 2 * RATE, 30, '1 s of talk in the speaker file')
    frequency, level = dominant_frequency(played(speaker), RATE)
    print(f'speaker file: peak {frequency:.1f} Hz, RMS {level:.0f}')
    assert abs(frequency - TONE_HZ) < 5 and level > 1000, (frequency, level)
    held = len(chunks.messages)
    page.wait_for_timeout(500)
    assert len(chunks.messages) <= held + 3, 'the talk ends with the release'

    # dwell toggles talking: on after a dwell, on while the gaze is elsewhere, off after the next
    page.fill('#dwell-ms', '300')
    page.mouse.move(5, 5)
    before = len(chunks.messages)
    page.mouse.move(ptt['x'] + ptt['width'] / 2, ptt['y'] + ptt['height'] / 2)
    page.wait_for_function("document.getElementById('ptt').getAttribute('aria-pressed') === 'true'")
    page.mouse.move(5, 5)  # looks away: still talking
    wait_until(lambda: len(chunks.messages) >= before + 50, 10, 'talk on after a dwell')
    page.mouse.move(ptt['x'] + ptt['width'] / 2, ptt['y'] + ptt['height'] / 2)
    page.wait_for_function("document.getElementById('ptt').getAttribute('aria-pressed') === 'false'",
                           timeout=5000)
    assert page.text_content('#ptt') == 'Hold to talk'
    assert not errors, errors


def test_the_cloud_page_talks_over_whip_in_server_mode(proxied_stack, fake_robot, sources, streaming_node,
                                                       ros_node, browser):
    """The cloud page behind the shipped Caddyfile: WHIP at its own origin to MediaMTX (the relay
    authorizes), from where the robot's streaming node puts the talk on ``audio/speaker``.
    """
    sources()
    robot = proxied_stack.robot_id
    streaming_node(password=proxied_stack.tokens['robot'], mode='server', api_url='none', audio=False,
                   server_url=f'rtsp://127.0.0.1:{proxied_stack.mediamtx.rtsp}', stream_key=robot, stream_user=robot)
    status = ros_node.subscribe(StreamStatus, 'stream/status',
                                QoSProfile(depth=5, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL))
    status.wait_for(lambda m: m.active_mode == 'server', timeout=30, what='server mode active')
    chunks = ros_node.subscribe(AudioChunk, 'audio/speaker', qos_profile_sensor_data)

    page = browser.new_page(viewport={'width': 1280, 'height': 900})
    errors: list[str] = []
    page.on('pageerror', lambda exc: errors.append(str(exc)))
    page.on('response', lambda r: errors.append(f'{r.status} {r.url}') if r.status >= 400 and 'talk' in r.url else None)
    page.goto(f'{proxied_stack.public}/#robot=robot1&token={proxied_stack.tokens["user"]}')  # may talk to robot1
    page.wait_for_function("document.getElementById('mode').textContent.startsWith('mode: server')", timeout=30000)
    page.locator('body').click(position={'x': 5, 'y': 5})
    ptt = page.locator('#ptt').bounding_box()
    page.mouse.move(ptt['x'] + ptt['width'] / 2, ptt['y'] + ptt['height'] / 2)
    page.mouse.down()
    wait_until(lambda: sum(m.header.frame_id == 'talkback' for m in chunks.messages) >= 75, 30,
               '1.5 s of WHIP talkback on audio/speaker')
    page.mouse.up()
    page.wait_for_function("document.getElementById('ptt').getAttribute('aria-pressed') === 'false'")
    talkback = [m for m in chunks.messages if m.header.frame_id == 'talkback']
    frequency, level = dominant_frequency(b''.join(bytes(m.data) for m in talkback[10:70]), RATE)
    print(f'server-mode talkback: {len(talkback)} chunks, peak {frequency:.1f} Hz, RMS {level:.0f}')
    assert abs(frequency - TONE_HZ) < 5 and level > 300, (frequency, level)  # Opus, the browser's gain
    assert page.text_content('#ptt') == 'Hold to talk' and not errors, errors
