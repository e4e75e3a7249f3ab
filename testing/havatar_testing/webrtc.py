"""A WHEP/WHIP client for tests and benchmarks (aiortc, the way a browser does it)."""
from __future__ import annotations

import asyncio
import base64

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack


async def whep_receive(url: str, user: str = '', password: str = '', token: str = '',
                       ) -> tuple[RTCPeerConnection, asyncio.Queue[MediaStreamTrack]]:
    """Open a WHEP session; returns the connection and a queue of the tracks received."""
    pc = RTCPeerConnection()
    pc.addTransceiver('video', direction='recvonly')
    pc.addTransceiver('audio', direction='recvonly')
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    pc.on('track', tracks.put_nowait)
    await _negotiate(pc, url, user, password, token)
    return pc, tracks


async def whip_publish(url: str, track: MediaStreamTrack, user: str = '', password: str = '',
                       token: str = '') -> RTCPeerConnection:
    """Publish ``track`` with WHIP (what the web UI's push-to-talk does)."""
    pc = RTCPeerConnection()
    pc.addTransceiver(track, direction='sendonly')
    await _negotiate(pc, url, user, password, token)
    return pc


async def _negotiate(pc: RTCPeerConnection, url: str, user: str, password: str, token: str) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    headers = {'Content-Type': 'application/sdp'}
    if token:
        headers['Authorization'] = f'Bearer {token}'
    elif user:
        headers['Authorization'] = 'Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode()
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=pc.localDescription.sdp, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status != 201:
                await pc.close()
                raise PermissionError(f'{url}: HTTP {response.status} {await response.text()}')
            answer = await response.text()
    await pc.setRemoteDescription(RTCSessionDescription(answer, 'answer'))
