"""Robot -> person audio latency and the CPU of the audio path, in headless Chromium.

    . scripts/env.sh && python src/havatar_relay/benchmarks/audio_latency.py [--bursts 40]

The microphone node plays a WAV loop (``--period`` s: an 80 ms 1 kHz burst, then silence).
Each burst's capture time is its first loud sample in ``audio/mic`` (the chunk's stamp plus
the sample's offset; the benchmark subscribes too). The page (the robot's own web UI,
sound allowed) polls its output AnalyserNode and notes the wall clock when a burst
appears there; both clocks are this machine's. Latency = page time - capture time.

1. Local mode: microphone -> relay_node /audio/ws (PCM) -> AudioWorklet jitter buffer.
   Baseline in the same run: the same frames reaching a Python WebSocket client (transport alone).
2. Server mode: microphone -> streaming_node (Opus) -> MediaMTX -> WHEP -> the page's WebAudio.
   Baseline in the same run: aiortc receiving the same WHEP audio (no browser).
The "ear" column adds the AudioContext's reported output latency (base + output).

CPU (percent of one core over ``--cpu-seconds``): the relay node with no listener and with
one; Chromium's processes with the sound on and suspended.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np
import psutil
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'testing'))

from havatar_bringup.graph import parameter_arguments  # noqa: E402
from havatar_msgs.msg import AudioChunk, StreamStatus  # noqa: E402
from havatar_relay.audio_stream import decode_frame  # noqa: E402
from havatar_testing import ProcessManager, free_port, ros_executable  # noqa: E402
from havatar_testing.audio import start_microphone, start_relay_node  # noqa: E402
from havatar_testing.browser import launch  # noqa: E402
from havatar_testing.cpu import cpu_percent  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment  # noqa: E402
from havatar_testing.mediamtx import MediaMtxServer, MediaMtxUser  # noqa: E402
from havatar_testing.relay import LOCAL_TOKEN  # noqa: E402
from havatar_testing.ros import RosTestNode  # noqa: E402
from havatar_testing.streaming import ROBOT, USERS, VIEWER  # noqa: E402
from havatar_testing.webrtc import whep_receive  # noqa: E402

RATE = 48000
LATCHED = QoSProfile(depth=5, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
LOUD = 0.1  # of full scale: a burst sample (the burst is at 0.5)

DETECTOR_JS = """() => {
  const an = window.havatarAudio.output, buf = new Float32Array(an.fftSize);
  let loud = false, quietSince = 0;
  window.benchOnsets = [];
  setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let peak = 0;
    for (let i = buf.length - 128; i < buf.length; i++) peak = Math.max(peak, Math.abs(buf[i]));
    const now = performance.timeOrigin + performance.now();
    if (!loud && peak > %(loud)s) { loud = true; quietSince = 0; window.benchOnsets.push(now); }
    else if (loud && peak < 0.02) { quietSince = quietSince || now; if (now - quietSince > 150) loud = false; }
    else quietSince = 0;
  }, 1);
  const c = window.havatarAudio.context;
  return (c.baseLatency || 0) * 1000 + (c.outputLatency || 0) * 1000;
}""" % {'loud': LOUD}


def burst_wav(period: float) -> bytes:
    t = np.arange(int(period * RATE)) / RATE
    samples = np.where(t < 0.08, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
    out = io.BytesIO()
    with wave.open(out, 'wb') as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes((samples * 32767).astype('<i2').tobytes())
    return out.getvalue()


def onsets_in(chunks: list[tuple[int, bytes]]) -> list[float]:
    """Wall-clock ms of each burst's first loud sample in (stamp_ns, pcm) chunks, in order."""
    onsets, loud_before = [], False
    for stamp_ns, pcm in chunks:
        samples = np.abs(np.frombuffer(pcm, '<i2')) / 32768
        loud = np.flatnonzero(samples > LOUD)
        if len(loud) and not loud_before:
            onsets.append(stamp_ns / 1e6 + loud[0] / RATE * 1000)
        loud_before = bool(len(loud)) and loud[-1] > len(samples) - RATE * 0.01  # still sounding at the end
        if not len(loud):
            loud_before = False
    return onsets


def match(captured: list[float], heard: list[float], skip: int = 2) -> list[float]:
    """Latency (ms) of each heard onset against the latest capture before it."""
    out = []
    for h in heard[skip:]:
        earlier = [c for c in captured if c <= h]
        if earlier and h - earlier[-1] < 900:
            out.append(h - earlier[-1])
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float('nan')


def row(name: str, values: list[float], extra: float = 0.0) -> str:
    if not values:
        return f'  {name:52} n=0 (nothing matched)'
    return (f'  {name:52} {len(values):4d} {statistics.median(values):8.1f} {pct(values, 95):8.1f}'
            f' {statistics.median(values) + extra:8.1f}')


def chromium_roots() -> list[int]:
    """The pids of the Chromium browsers this benchmark started (their trees hold the rest)."""
    return [p.pid for p in psutil.Process().children(recursive=True)
            if 'chrom' in p.name().lower() and 'chrom' not in p.parent().name().lower()]


class MicLog:
    """``audio/mic`` as (stamp_ns, pcm), received by the benchmark's own ROS node."""

    def __init__(self, ros: RosTestNode) -> None:
        self.log = ros.subscribe(AudioChunk, 'audio/mic', qos_profile_sensor_data)

    def onsets(self) -> list[float]:
        return onsets_in([(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec, bytes(m.data))
                          for m in self.log.messages])


def ws_baseline(url: str, stop: threading.Event, onsets: list[float]) -> None:
    """A Python client of /audio/ws noting when each burst's frame arrives (transport alone)."""
    import aiohttp

    async def run() -> None:
        loud_before = False
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            while not stop.is_set():
                message = await ws.receive_bytes()
                arrival = time.time() * 1000
                _, _, _, stamp_ms, pcm = decode_frame(message)
                loud = bool((np.abs(np.frombuffer(pcm, '<i2')) > LOUD * 32768).any())
                if loud and not loud_before:
                    onsets.append(arrival)
                loud_before = loud
    asyncio.run(run())


def whep_baseline(url: str, stop: threading.Event, onsets: list[float]) -> None:
    """An aiortc client of MediaMTX's WHEP: when each burst's decoded audio arrives."""
    async def run() -> None:
        pc, tracks = await whep_receive(url, VIEWER.user, VIEWER.password)
        try:
            track = await asyncio.wait_for(tracks.get(), 10)
            while track.kind != 'audio':
                track = await asyncio.wait_for(tracks.get(), 10)
            loud_before = False
            while not stop.is_set():
                frame = await asyncio.wait_for(track.recv(), 10)
                arrival = time.time() * 1000
                pcm = frame.to_ndarray().astype(float) / 32768
                loud = bool((np.abs(pcm) > LOUD).any())
                if loud and not loud_before:
                    onsets.append(arrival)
                loud_before = loud
        finally:
            await pc.close()
    asyncio.run(run())


def listen(page, seconds: float) -> tuple[list[float], float]:
    extra = page.evaluate(DETECTOR_JS)
    time.sleep(seconds)
    return page.evaluate('window.benchOnsets'), extra


HEADER = f'  {"path":52} {"n":>4} {"p50":>8} {"p95":>8} {"ear p50":>8}'
UI_STATE = "document.getElementById('sound-state').textContent === 'sound: %s'"


def local_mode(browser, base: str, relay_pid: int, mic: MicLog, options: argparse.Namespace) -> None:
    idle_relay = cpu_percent([relay_pid], options.cpu_seconds)
    page = browser.new_page()
    page.goto(f'{base}/#robot=robot1&token={LOCAL_TOKEN}')
    page.wait_for_function(UI_STATE % 'robot (local)', timeout=30000)
    stop, ws_onsets = threading.Event(), []
    ws_url = base.replace('http', 'ws') + f'/audio/ws?token={LOCAL_TOKEN}'
    baseline = threading.Thread(target=ws_baseline, args=(ws_url, stop, ws_onsets), daemon=True)
    baseline.start()
    heard, extra = listen(page, options.bursts * options.period + 2)
    stop.set()
    baseline.join(5)
    captured = mic.onsets()
    buffer = page.evaluate('window.havatarAudio.stats()')
    listening_relay = cpu_percent([relay_pid], options.cpu_seconds)
    browser_on = cpu_percent(chromium_roots(), options.cpu_seconds)
    page.evaluate('window.havatarAudio.context.suspend()')
    browser_off = cpu_percent(chromium_roots(), options.cpu_seconds)
    page.close()
    print(f'1. local mode: capture -> heard in Chromium (ms), {options.period:g} s between bursts')
    print(HEADER)
    print(row('Python client of /audio/ws (transport baseline)', match(captured, ws_onsets)))
    print(row('page: /audio/ws -> AudioWorklet jitter buffer', match(captured, heard), extra))
    print(f'  jitter buffer: {buffer["depthMs"]:.0f} ms deep now, {buffer["underruns"]} underruns, '
          f'{buffer["skipped"]} samples skipped / {buffer["repeated"]} repeated; output latency '
          f'reported {extra:.1f} ms')
    print(f'  CPU (% of one core): relay_node idle {idle_relay:.1f}, one listener {listening_relay:.1f}; '
          f'Chromium sound on {browser_on:.1f}, suspended {browser_off:.1f}')


def server_mode(browser, base: str, pm: ProcessManager, server: MediaMtxServer, ros: RosTestNode, mic: MicLog,
                options: argparse.Namespace) -> None:
    pm.start('camera_node', [ros_executable('havatar_drivers', 'camera_node'), '--ros-args', *parameter_arguments(
        {'source': 'test_pattern', 'width': 320, 'height': 240, 'fps': 15.0})])
    pm.start('streaming_node', [
        ros_executable('havatar_streaming', 'streaming_node'), '--ros-args', *parameter_arguments({
            'mjpeg_port': free_port(), 'mjpeg_host': '127.0.0.1', 'width': 320, 'height': 240,
            'fps': 15.0, 'server_url': f'rtsp://127.0.0.1:{server.ports.rtsp}', 'mode': 'server',
            'api_url': f'http://127.0.0.1:{server.ports.api}', 'stream_key': ROBOT.path,
            'stream_user': ROBOT.user})],
        env={'HAVATAR_STREAM_PASSWORD': ROBOT.password, 'HAVATAR_ACCESS_TOKEN': 'bench-mjpeg-token'})
    status = ros.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.active_mode == 'server', timeout=40, what='server mode active')
    page = browser.new_page()
    # the page as the cloud serves it (the robot's own page plays no WebRTC): WHEP to this MediaMTX
    cloud_site = json.dumps({'site': 'cloud', 'webrtc_url': f'http://127.0.0.1:{server.ports.webrtc}'})
    page.route('**/web/site.json', lambda route: route.fulfill(content_type='application/json', body=cloud_site))
    page.goto(f'{base}/#robot=robot1&token={LOCAL_TOKEN}')
    page.wait_for_function(UI_STATE % 'WebRTC', timeout=40000)
    stop, rtc_onsets = threading.Event(), []
    baseline = threading.Thread(target=whep_baseline, args=(server.whep_url('robot1'), stop, rtc_onsets),
                                daemon=True)
    baseline.start()
    heard, extra = listen(page, options.bursts * options.period + 2)
    stop.set()
    baseline.join(12)
    captured = mic.onsets()
    browser_on = cpu_percent(chromium_roots(), options.cpu_seconds)
    page.close()
    print('\n2. server mode: capture -> streaming_node (Opus) -> MediaMTX -> WHEP -> heard (ms)')
    print(HEADER)
    print(row('aiortc WHEP client (no browser, baseline)', match(captured, rtc_onsets)))
    print(row('page: WebRTC track -> WebAudio', match(captured, heard), extra))
    print(f'  CPU (% of one core): Chromium with WebRTC video+audio {browser_on:.1f}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--bursts', type=int, default=40)
    parser.add_argument('--period', type=float, default=0.5, help='seconds between bursts')
    parser.add_argument('--cpu-seconds', type=float, default=10.0)
    parser.add_argument('--skip-local', action='store_true')
    parser.add_argument('--skip-server', action='store_true')
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    work = Path(tempfile.mkdtemp(prefix='havatar-audio-bench-'))
    wav = work / 'bursts.wav'
    wav.write_bytes(burst_wav(options.period))
    pm = ProcessManager(work, dict(os.environ))
    ros = RosTestNode(lease.domain_id, 'audio_bench')
    try:
        start_microphone(pm, source='file', file=wav)
        mic = MicLog(ros)
        server = MediaMtxServer(pm, work, USERS + [MediaMtxUser('any', actions=('read',), path='robot1')])
        if not options.skip_server:
            server.start()  # now: its ports were free when chosen
        base, relay = start_relay_node(pm, whep_base_url=f'http://127.0.0.1:{server.ports.webrtc}')
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                if not options.skip_local:
                    local_mode(browser, base, relay.pid, mic, options)
                if not options.skip_server:
                    server_mode(browser, base, pm, server, ros, mic, options)
            finally:
                browser.close()
    finally:
        ros.close()
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
