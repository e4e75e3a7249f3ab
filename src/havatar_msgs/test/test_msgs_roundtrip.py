"""havatar_msgs crosses a process boundary over DDS intact."""
import sys
from pathlib import Path

from havatar_msgs.msg import AudioChunk, AudioFormat, StreamStatus
from havatar_msgs.srv import SetStreamMode

PUBLISHER = Path(__file__).with_name('audio_chunk_publisher.py')


def test_audio_chunk_arrives_from_another_process(processes, ros_node):
    publisher = processes.start('audio_chunk_publisher', [sys.executable, PUBLISHER])
    publisher.wait_for_output('publishing')
    received = ros_node.subscribe(AudioChunk, 'audio/mic')

    chunk = received.wait_for(lambda m: m.sequence >= 3, timeout=15,
                              what='AudioChunk with sequence >= 3')

    assert chunk.header.frame_id == 'mic'
    assert chunk.format.sample_rate == 48000
    assert chunk.format.channels == 1
    assert chunk.format.sample_format == AudioFormat.SAMPLE_FORMAT_S16LE
    assert chunk.format.coding_format == AudioFormat.CODING_PCM
    start = chunk.sequence % 256
    assert bytes(chunk.data) == bytes(range(start, start + 8))


def test_interfaces_have_the_contract_fields():
    status = StreamStatus(requested_mode=StreamStatus.MODE_SERVER,
                          active_mode=StreamStatus.MODE_LOCAL, fallback_active=True)
    assert status.fallback_active and status.active_mode == 'local'
    request = SetStreamMode.Request(mode='server')
    response = SetStreamMode.Response(success=False, message='unreachable', active_mode='local')
    assert request.mode == 'server' and not response.success
