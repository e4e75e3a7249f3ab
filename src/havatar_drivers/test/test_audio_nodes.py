"""The real microphone_node and speaker_node processes, with synthetic source and file sink."""
from __future__ import annotations

import time
import wave

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import String

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from havatar_drivers.audio.pcm import tone
from havatar_msgs.msg import AudioChunk, AudioFormat
from havatar_testing import ros_executable, wait_until

LATCHED = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


def start_node(processes, executable, *args):
    node = processes.start(executable, [ros_executable('havatar_drivers', executable),
                                        '--ros-args', *args])
    node.wait_for_output(r'capturing|playing', timeout=20)
    return node


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def read_wav(path):
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), '<i2'), wav.getframerate()


def assert_sample_clock(gaps: np.ndarray, chunk: float = 0.02) -> None:
    """Capture stamps ``gaps`` apart follow the sample clock: whole chunks, most of them one.
    More than one is a chunk lost in transit, or the source skipping ahead after the machine
    stalled (it drops what it fell behind on rather than bursting).
    """
    chunks = gaps / chunk
    assert np.allclose(chunks, np.round(chunks), atol=5e-3) and (np.round(chunks) >= 1).all(), chunks
    assert np.mean(np.round(chunks) == 1) >= 0.8, chunks


def test_microphone_publishes_20ms_chunks_and_a_latched_format(processes, ros_node):
    start_node(processes, 'microphone_node', '-p', 'source:=tone', '-p', 'tone_hz:=1000.0')
    chunks = ros_node.subscribe(AudioChunk, 'audio/mic', qos_profile_sensor_data)
    chunks.wait_for(lambda m: m.sequence >= 60, timeout=20, what='60 chunks')
    fmt = ros_node.subscribe(AudioFormat, 'audio/mic/format', LATCHED).wait_for(timeout=10)
    assert (fmt.sample_rate, fmt.channels, fmt.sample_format, fmt.coding_format) == \
        (48000, 1, AudioFormat.SAMPLE_FORMAT_S16LE, AudioFormat.CODING_PCM)
    msgs = chunks.messages
    assert all(len(m.data) == 960 * 2 for m in msgs)
    sequences = [m.sequence for m in msgs]
    assert sequences == sorted(sequences)
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs]
    # a chunk lost in transit skips a number; a stalled machine makes the tone skip ahead
    assert_sample_clock(np.diff(stamps) / np.diff(sequences))
    samples = np.frombuffer(b''.join(bytes(m.data) for m in msgs[-10:]), '<i2')
    assert abs(dominant_frequency(samples.astype(float), 48000) - 1000) < 10


def test_microphone_publishes_the_tone_as_audio_capture_does(processes, ros_node):
    start_node(processes, 'microphone_node', '-p', 'source:=tone', '-p', 'tone_hz:=1000.0',
               '-p', 'sample_rate:=16000')
    data = ros_node.subscribe(AudioData, 'audio/audio')  # reliable, depth 10: audio_capture's QoS
    stamped = ros_node.subscribe(AudioDataStamped, 'audio/audio_stamped')
    info = ros_node.subscribe(AudioInfo, 'audio/audio_info', LATCHED).wait_for(timeout=10)
    assert (info.channels, info.sample_rate, info.sample_format, info.coding_format, info.bitrate) == \
        (1, 16000, 'S16LE', 'wave', 16000 * 16)
    wait_until(lambda: len(data.messages) >= 25 and len(stamped.messages) >= 25, timeout=20,
               what='25 AudioData and 25 AudioDataStamped')
    assert all(len(m.data) == 320 * 2 for m in data.messages)  # 20 ms at 16 kHz
    samples = np.frombuffer(b''.join(bytes(m.data) for m in data.messages[-10:]), '<i2')
    assert abs(dominant_frequency(samples.astype(float), 16000) - 1000) < 10
    msgs = stamped.messages
    samples = np.frombuffer(b''.join(bytes(m.audio.data) for m in msgs[-10:]), '<i2')
    assert abs(dominant_frequency(samples.astype(float), 16000) - 1000) < 10
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in msgs]
    # a reliable depth-10 queue still loses a message now and then on a loaded machine
    assert_sample_clock(np.diff(stamps))
    assert msgs[-1].header.frame_id == 'microphone'


@pytest.mark.parametrize('standard_input, msg_type, topic', [
    ('audio', AudioData, 'audio/speaker/audio'),
    ('audio_stamped', AudioDataStamped, 'audio/speaker/audio_stamped'),
])
def test_speaker_plays_an_audio_common_publisher(processes, ros_node, tmp_path, standard_input, msg_type, topic):
    wav_path = tmp_path / 'speaker.wav'
    start_node(processes, 'speaker_node', '-p', 'sink:=file', '-p', f'file:={wav_path}',
               '-p', f'standard_input:={standard_input}')
    # as audio_capture publishes them: the format latched, then 20 ms chunks at 16 kHz
    info = ros_node.node.create_publisher(AudioInfo, 'audio/speaker/audio_info', LATCHED)
    info.publish(AudioInfo(channels=1, sample_rate=16000, sample_format='S16LE', coding_format='wave',
                           bitrate=256000))
    pub = ros_node.node.create_publisher(msg_type, topic, 10)
    ros_node.wait_for_subscribers(pub)
    ros_node.wait_for_subscribers(info)
    for n in range(75):  # 1.5 s, paced as a capture would send them
        data = AudioData(data=tone(660.0, 16000, n * 320, 320))
        pub.publish(data if msg_type is AudioData else AudioDataStamped(audio=data))
        time.sleep(0.02)
    wait_until(lambda: wav_path.exists() and wav_path.stat().st_size > 48000 * 2, timeout=20,
               what='one second of audio in the WAV file')
    samples, rate = read_wav(wav_path)
    # played at 48 kHz as 660 Hz: the AudioInfo's rate was applied (ignored, it would be 1980 Hz)
    assert rate == 48000
    assert abs(dominant_frequency(samples[-24000:].astype(float), rate) - 660) < 10


def test_speaker_plays_the_microphone_into_a_wav_file(processes, ros_node, tmp_path):
    wav_path = tmp_path / 'speaker.wav'
    start_node(processes, 'speaker_node', '-p', 'sink:=file', '-p', f'file:={wav_path}')
    start_node(processes, 'microphone_node', '-p', 'source:=tone', '-p', 'tone_hz:=660.0',
               '-r', 'audio/mic:=audio/speaker')
    wait_until(lambda: wav_path.exists() and wav_path.stat().st_size > 48000 * 2, timeout=20,
               what='one second of audio in the WAV file')
    samples, rate = read_wav(wav_path)
    assert rate == 48000
    assert abs(dominant_frequency(samples[-24000:].astype(float), rate) - 660) < 10


def test_say_speaks_text_into_the_sink(processes, ros_node, tmp_path):
    wav_path = tmp_path / 'speech.wav'
    start_node(processes, 'speaker_node', '-p', 'sink:=file', '-p', f'file:={wav_path}')
    pub = ros_node.node.create_publisher(String, 'say', 10)
    ros_node.wait_for_subscribers(pub)
    pub.publish(String(data='Hello, I am the robot. $(rm -rf /) "; echo pwned'))
    wait_until(lambda: wav_path.exists() and wav_path.stat().st_size > 48000, timeout=20,
               what='speech in the WAV file')
    time.sleep(0.5)
    samples, _ = read_wav(wav_path)
    assert np.sqrt(np.mean(samples.astype(float) ** 2)) > 300, 'audible speech'


def test_missing_alsa_device_is_reported_not_fatal(processes, ros_node):
    node = start_node(processes, 'microphone_node', '-p', 'source:=alsa',
                      '-p', 'device:=hw:99,0', '-p', 'retry_period:=0.5',
                      '-p', 'diagnostics_period:=0.3')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    msg = diagnostics.wait_for(lambda m: any(s.level == s.ERROR and 'hw:99,0' in s.message
                                             for s in m.status),
                               timeout=20, what='an ERROR naming the device')
    assert msg and node.running()
