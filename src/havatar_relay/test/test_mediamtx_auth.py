"""MediaMTX asks the relay server who may publish and watch: the same tokens as driving."""
from __future__ import annotations

import asyncio
import subprocess

import pytest

from havatar_relay.server.app import mediamtx_allows
from havatar_relay.accounts import Accounts
from havatar_testing import find_program
from havatar_testing.webrtc import whep_receive

ACCOUNTS = Accounts(robots={'robot1': 'robot1-token'},
                    users={'alice': ('alice-token', ['robot1']), 'carol': ('carol-token', ['robot2'])})


@pytest.mark.parametrize('request_,allowed', [
    ({'action': 'publish', 'path': 'robot1', 'user': 'robot1', 'password': 'robot1-token'}, True),
    ({'action': 'publish', 'path': 'robot1', 'user': 'robot1', 'password': 'nope'}, False),
    ({'action': 'publish', 'path': 'robot2', 'user': 'robot1', 'password': 'robot1-token'}, False),
    ({'action': 'publish', 'path': 'robot1', 'token': 'alice-token'}, False),
    ({'action': 'read', 'path': 'robot1', 'token': 'alice-token'}, True),
    ({'action': 'read', 'path': 'robot1', 'query': 'x=1&token=alice-token'}, True),
    ({'action': 'read', 'path': 'robot1', 'user': 'alice', 'password': 'alice-token'}, True),
    ({'action': 'read', 'path': 'robot1', 'token': 'carol-token'}, False),
    ({'action': 'read', 'path': 'robot1'}, False),
    ({'action': 'publish', 'path': 'robot1/talk', 'token': 'alice-token'}, True),
    ({'action': 'publish', 'path': 'robot1/talk', 'token': 'carol-token'}, False),
    ({'action': 'read', 'path': 'robot1/talk', 'user': 'robot1', 'password': 'robot1-token'}, True),
    ({'action': 'read', 'path': 'robot1/talk', 'token': 'alice-token'}, False),
    ({'action': 'read', 'path': 'robot1/other', 'token': 'alice-token'}, False),
    ({'action': 'api', 'path': '', 'token': 'alice-token'}, False),
])
def test_hook_decisions(request_, allowed):
    assert mediamtx_allows(ACCOUNTS, request_) is allowed


@pytest.mark.parametrize('request_,allowed', [
    ({'action': 'api', 'path': '', 'token': 'admin-token'}, True),
    ({'action': 'api', 'path': '', 'user': 'any', 'password': 'admin-token'}, True),
    ({'action': 'api', 'path': '', 'query': 'token=admin-token'}, True),
    ({'action': 'api', 'path': ''}, False),
    ({'action': 'api', 'path': '', 'token': 'alice-token'}, False),
    ({'action': 'api', 'path': '', 'user': 'robot1', 'password': 'robot1-token'}, False),
    ({'action': 'api', 'path': 'robot1', 'user': 'robot1', 'password': 'robot1-token'}, False),
    ({'action': 'metrics', 'path': '', 'token': 'admin-token'}, True),
    ({'action': 'pprof', 'path': '', 'token': 'alice-token'}, False),
])
def test_the_api_opens_to_the_admin_token_only(request_, allowed):
    """MediaMTX tells the hook neither the path nor the method of an API request: a robot
    may not read even its own path there, as the same login could reconfigure the server.
    """
    assert mediamtx_allows(ACCOUNTS, request_, admin_token='admin-token') is allowed


def test_real_mediamtx_uses_the_relay_hook(relay_server, mediamtx_factory, processes):
    relay = relay_server()
    server = mediamtx_factory(users=[], overrides={
        'authMethod': 'http', 'authHTTPAddress': f'{relay}/mediamtx/auth',
        'authHTTPExclude': [{'action': 'api'}, {'action': 'metrics'}]})
    publisher = processes.start('ffmpeg', [
        find_program('ffmpeg'), '-hide_banner', '-nostdin', '-re', '-f', 'lavfi',
        '-i', 'testsrc2=size=320x240:rate=15', '-c:v', 'libx264', '-preset', 'ultrafast',
        '-tune', 'zerolatency', '-g', '15', '-pix_fmt', 'yuv420p', '-f', 'rtsp',
        '-rtsp_transport', 'tcp', server.rtsp_url('robot1', 'robot1', 'robot1-token')])
    publisher.wait_for(lambda: server.path_ready('robot1'), timeout=20, what='robot1 published')

    def probe(user: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([find_program('ffprobe'), '-v', 'error', '-rtsp_transport', 'tcp',
                               '-show_streams', server.rtsp_url('robot1', user, password)],
                              capture_output=True, text=True, timeout=30)

    assert 'codec_name=h264' in probe('alice', 'alice-token').stdout
    refused = probe('carol', 'carol-token')
    assert refused.returncode != 0 and '401' in refused.stderr
    assert probe('alice', 'wrong').returncode != 0

    with pytest.raises(PermissionError):
        asyncio.run(whep_receive(server.whep_url('robot1'), token='carol-token'))

    async def watch() -> None:  # a browser with a valid token (Authorization: Bearer)
        pc, tracks = await whep_receive(server.whep_url('robot1'), token='alice-token')
        try:
            track = await asyncio.wait_for(tracks.get(), 10)
            await asyncio.wait_for(track.recv(), 10)
        finally:
            await pc.close()
    asyncio.run(watch())
