"""The real MediaMTX from the tools folder takes an authenticated RTSP publish and serves it."""
import json
import subprocess

from havatar_testing import MediaMtxUser, find_program
from havatar_testing.streaming import push_test_pattern

PUBLISHER = MediaMtxUser('robot', 'publish-secret', actions=('publish',), path='robot1')
VIEWER = MediaMtxUser('viewer', 'read-secret', actions=('read',), path='robot1')


def probe(url):
    result = subprocess.run(
        [find_program('ffprobe'), '-v', 'error', '-rtsp_transport', 'tcp',
         '-show_streams', '-of', 'json', url],
        capture_output=True, text=True, timeout=20)
    return result.returncode, result.stdout, result.stderr


def test_authenticated_rtsp_publish_is_read_back(processes, mediamtx_factory):
    server = mediamtx_factory(users=[PUBLISHER, VIEWER])
    publisher = push_test_pattern(
        processes, server.rtsp_url('robot1', PUBLISHER.user, PUBLISHER.password))
    publisher.wait_for(lambda: server.path_ready('robot1'), timeout=20,
                       what='robot1 ready on MediaMTX')

    code, out, err = probe(server.rtsp_url('robot1', VIEWER.user, VIEWER.password))

    assert code == 0, err
    stream = json.loads(out)['streams'][0]
    assert (stream['codec_name'], stream['width'], stream['height']) == ('h264', 320, 240)


def test_wrong_publish_password_is_refused(processes, mediamtx_factory):
    server = mediamtx_factory(users=[PUBLISHER, VIEWER])
    publisher = push_test_pattern(processes, server.rtsp_url('robot1', 'robot', 'wrong'))

    assert publisher.wait_exit(timeout=20) != 0
    assert '401' in publisher.output() or 'Unauthorized' in publisher.output()
    assert not server.path_ready('robot1')


def test_reader_without_credentials_is_refused(processes, mediamtx_factory):
    server = mediamtx_factory(users=[PUBLISHER, VIEWER])
    publisher = push_test_pattern(
        processes, server.rtsp_url('robot1', PUBLISHER.user, PUBLISHER.password))
    publisher.wait_for(lambda: server.path_ready('robot1'), timeout=20,
                       what='robot1 ready on MediaMTX')

    code, _, err = probe(server.rtsp_url('robot1'))

    assert code != 0
    assert '401' in err or 'Unauthorized' in err
