"""Person -> robot audio latency (the browser's microphone to the robot's speaker), both modes.

    . scripts/env.sh && python src/havatar_relay/benchmarks/talk_latency.py [--bursts 30]

Headless Chromium opens the robot's own web UI. Its microphone is a generator in the page
(``getUserMedia`` replaced): an AudioWorklet that plays a 1 kHz burst of 150 ms on demand
and stamps, with the browser's ``Date.now()``, the moment it renders the burst's first
sample — the sound entering the browser. Each burst is detected where it reaches the robot,
on the same machine's clock (``time.time()``):

- ``audio/speaker`` topic: when the chunk holding the first loud sample arrives;
- speaker node's file sink: when that sample is written (the chunk's write time plus the
  sample's place in it: when a device with no buffer of its own would play it).

Paths:

- local: the UI's talk button (``web/talk.js``: AudioWorklet capture, 20 ms PCM frames over
  ``/talk/ws``) -> relay node -> ``audio/speaker`` -> speaker node (jitter buffer 3 chunks);
- baseline local: a Python client sending the same 20 ms PCM frames to ``/talk/ws`` at
  real-time pace, no browser (what the browser's capture path adds);
- server: the browser publishes with WHIP (Chromium's WebRTC, Opus) to MediaMTX -> the
  streaming node's talkback reader (ffmpeg over RTSP) -> ``audio/speaker`` -> speaker node.

CPU is per path for the robot's processes that carry the audio (relay node, or streaming
node with its ffmpeg children) and the speaker node, in % of one core, over the whole
measurement (the talk runs all along; the bursts are most of nothing). The machine is shared:
arrival gaps of 100+ ms on audio/speaker come from CPU contention, and the figures vary
between runs by tens of ms.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / 'testing'))

from havatar_testing import (MediaMtxServer, ProcessManager, free_port, ros_executable,  # noqa: E402
                             wait_until)
from havatar_testing.browser import launch  # noqa: E402
from havatar_testing.cpu import CpuMeter  # noqa: E402
from havatar_testing.isolation import DomainLease, ros_environment  # noqa: E402
from havatar_testing.streaming import BROWSER_TALK, ROBOT, USERS  # noqa: E402

RATE = 48000
CHUNK = 960                 # samples in 20 ms
BURST_MS, PERIOD_S, TONE_HZ = 150, 0.7, 1000.0
LOUD = 3000                 # |sample| that counts as the burst (its peak is ~16000)
QUIET_MS = 300              # quiet before a burst counts as a new one
TOKEN = 'bench-token'

GENERATOR = r"""
(() => {
  const BURST = `class Burst extends AudioWorkletProcessor {
    constructor() { super(); this.left = 0; this.phase = 0; this.freq = 1000; this.stamp = false;
      this.port.onmessage = (e) => { this.left = e.data.samples; this.freq = e.data.freq; this.stamp = true; }; }
    process(inputs, outputs) {
      const out = outputs[0][0];
      for (let i = 0; i < out.length; i++) {
        if (this.left > 0) {
          if (this.stamp) { this.port.postMessage(Date.now() + i * 1000 / sampleRate); this.stamp = false; }
          out[i] = 0.5 * Math.sin(this.phase); this.phase += 2 * Math.PI * this.freq / sampleRate; this.left--;
        } else out[i] = 0;
      }
      return true;
    }
  }
  registerProcessor('bench-burst', Burst);`;
  const bench = window.__bench = {
    onsets: [],
    async ready() {
      if (bench.node) return;
      bench.ctx = new AudioContext({ sampleRate: 48000 });
      await bench.ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([BURST], { type: 'text/javascript' })));
      bench.node = new AudioWorkletNode(bench.ctx, 'bench-burst', { numberOfInputs: 0, outputChannelCount: [1] });
      bench.dest = bench.ctx.createMediaStreamDestination();
      bench.node.connect(bench.dest);
      bench.node.port.onmessage = (e) => bench.onsets.push(e.data);
      await bench.ctx.resume();
    },
    burst(ms, freq) { bench.node.port.postMessage({ samples: Math.round(48 * ms), freq }); },
    async whip(url, user, pass) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const pc = bench.pc = new RTCPeerConnection();
      stream.getTracks().forEach((t) => pc.addTrack(t, stream));
      await pc.setLocalDescription(await pc.createOffer());
      const r = await fetch(url, { method: 'POST', body: pc.localDescription.sdp,
        headers: { 'Content-Type': 'application/sdp', Authorization: 'Basic ' + btoa(`${user}:${pass}`) } });
      if (r.status !== 201) throw new Error(`WHIP: HTTP ${r.status}`);
      await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    },
  };
  navigator.mediaDevices.getUserMedia = async () => {
    await bench.ready();
    return new MediaStream(bench.dest.stream.getAudioTracks().map((t) => t.clone()));
  };
})();
"""


class Onsets:
    """Burst onsets found in a stream of S16LE chunks: (time of the first loud sample)."""

    def __init__(self, place: bool) -> None:
        self.place = place  # a sample's time is the chunk's plus its place in it
        self.times: list[float] = []
        self.chunks = 0
        self.arrivals: list[float] = []
        self._last_loud = 0.0
        self._lock = threading.Lock()

    def feed(self, pcm: bytes, at_ms: float) -> None:
        """``at_ms``: when the chunk reached this point of the path."""
        x = np.abs(np.frombuffer(pcm, dtype='<i2').astype(np.int32))
        loud = np.flatnonzero(x > LOUD)
        with self._lock:
            self.chunks += 1
            self.arrivals.append(at_ms)
            if not len(loud):
                return
            first = at_ms + (loud[0] * 1000 / RATE if self.place else 0.0)
            if first - self._last_loud > QUIET_MS:
                self.times.append(first)
            self._last_loud = first

    def since(self, t_ms: float) -> list[float]:
        with self._lock:
            return [t for t in self.times if t >= t_ms]


def latencies(sent: list[float], heard: list[float]) -> tuple[list[float], int]:
    """Each burst's delay to its first detection within one period; and how many were lost."""
    out, lost = [], 0
    for t in sent:
        found = [h - t for h in heard if t - 5 <= h < t + PERIOD_S * 1000]
        if found:
            out.append(found[0])
        else:
            lost += 1
    return out, lost


def summary(values: list[float], lost: int) -> str:
    if not values:
        return f'{0:4d} {"-":>7} {"-":>7} {lost:5d}'
    ordered = sorted(values)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f'{len(ordered):4d} {statistics.median(ordered):7.1f} {p95:7.1f} {lost:5d}'


class SpeakerFile:
    """Polls the speaker node's WAV file; onsets at (write time + the sample's place)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.onsets = Onsets(place=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> 'SpeakerFile':
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        wait_until(lambda: self.path.exists() and self.path.stat().st_size > 44, 30, 'speaker file')
        with open(self.path, 'rb') as f:
            f.seek(44)  # Python's wave header
            pending = b''
            while not self._stop.is_set():
                data = f.read()
                now = time.time() * 1000
                if data:
                    pending += data
                    whole = len(pending) - len(pending) % (2 * CHUNK)
                    for i in range(0, whole, 2 * CHUNK):  # chunks just written: played from now
                        self.onsets.feed(pending[i:i + 2 * CHUNK], now)
                    pending = pending[whole:]
                self._stop.wait(0.002)


def speaker_topic(node, onsets: Onsets) -> None:
    from rclpy.qos import qos_profile_sensor_data
    from havatar_msgs.msg import AudioChunk

    def on_chunk(msg: AudioChunk) -> None:
        onsets.feed(bytes(msg.data), time.time() * 1000)
    node.create_subscription(AudioChunk, 'audio/speaker', on_chunk, qos_profile_sensor_data)


class SpeakerDiagnostics:
    """The speaker node's jitter buffer as its /diagnostics report it."""

    def __init__(self, node) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        self.depths: list[int] = []
        self.values: dict[str, str] = {}
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on, 10)

    def _on(self, msg) -> None:
        for status in msg.status:
            if status.name.endswith('speaker'):
                self.values = {kv.key: kv.value for kv in status.values}
                self.depths.append(int(self.values.get('buffer_chunks', 0)))

    def counters(self) -> tuple[int, int]:
        return int(self.values.get('catch_up_drops', 0)), int(self.values.get('underruns', 0))


def run_bursts(count: int, burst: Callable[[], None]) -> None:
    for _ in range(count):
        burst()
        time.sleep(PERIOD_S)
    time.sleep(1.0)  # the last one's way through


async def baseline_client(base: str, count: int) -> list[float]:
    """Real-time 20 ms PCM frames to /talk/ws with bursts in them; their onset times (ms)."""
    ws_base = base.replace('http', 'ws')
    onsets: list[float] = []
    async with aiohttp.ClientSession() as http:
        user = await http.ws_connect(ws_base + '/ws')
        await user.send_str(json.dumps({'type': 'hello', 'v': 1, 'role': 'user', 'token': TOKEN,
                                        'robot_id': 'robot1'}))
        welcome = json.loads((await user.receive(timeout=5)).data)
        await user.send_str(json.dumps({'type': 'take_control', 'force': True}))  # from the browser
        answer = asyncio.ensure_future(_answer_pings(user))
        talk = await http.ws_connect(ws_base + '/talk/ws')
        await talk.send_str(json.dumps({'type': 'talk', 'token': TOKEN, 'session_id': welcome['session_id']}))
        ready = json.loads((await talk.receive(timeout=5)).data)
        assert ready['type'] == 'talk_ready', ready
        period = int(PERIOD_S * RATE)
        total = int((count * PERIOD_S + 1.5) * RATE) // CHUNK
        burst = BURST_MS * RATE // 1000
        start = time.monotonic()
        for f in range(total):
            await asyncio.sleep(max(0.0, start + (f + 1) * CHUNK / RATE - time.monotonic()))  # frame full
            s = np.arange(f * CHUNK, (f + 1) * CHUNK)
            k = s % period - RATE // 2  # each period's burst starts 0.5 s into it
            on = (k >= 0) & (k < burst)
            samples = np.where(on, np.sin(2 * np.pi * TONE_HZ * k / RATE) * 16000, 0).astype('<i2')
            starts = np.flatnonzero(k == 0)
            if len(starts) and len(onsets) < count:  # sample j was captured (CHUNK - j) samples ago
                onsets.append(time.time() * 1000 - (CHUNK - starts[0]) * 1000 / RATE)
            await talk.send_bytes(samples.tobytes())
        await talk.close()
        answer.cancel()
        await user.close()
    return onsets


async def _answer_pings(ws) -> None:
    async for frame in ws:
        if frame.type != aiohttp.WSMsgType.TEXT:
            continue
        message = json.loads(frame.data)
        if message.get('type') == 'ping':
            await ws.send_str(json.dumps({'type': 'pong', 'ts': message.get('ts'), 'peer_ts': time.time() * 1000}))


def in_thread(run: Callable[[], list[float]]) -> list[float]:
    """Run beside Playwright's own event loop (on this thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--bursts', type=int, default=30, help='per path')
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright
    import rclpy

    lease = DomainLease()
    os.environ.update(ros_environment(lease.domain_id))
    work = Path(tempfile.mkdtemp(prefix='havatar-talk-bench-'))
    pm = ProcessManager(work, dict(os.environ))
    rclpy.init(domain_id=lease.domain_id)
    node = rclpy.create_node('talk_benchmark')
    spinner = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
    speaker_file: Optional[SpeakerFile] = None
    try:
        mtx_dir = work / 'mediamtx'
        mtx_dir.mkdir()
        server = MediaMtxServer(pm, mtx_dir, USERS).start()
        wav = work / 'speaker.wav'
        speaker = pm.start('speaker_node', [ros_executable('havatar_drivers', 'speaker_node'), '--ros-args',
                                            '-p', 'sink:=file', '-p', f'file:={wav}'])
        camera = pm.start('camera_node', [ros_executable('havatar_drivers', 'camera_node'), '--ros-args',
                                          '-p', 'source:=test_pattern', '-p', 'width:=160', '-p', 'height:=120',
                                          '-p', 'fps:=10.0'])
        streaming = pm.start('streaming_node', [
            ros_executable('havatar_streaming', 'streaming_node'), '--ros-args',
            '-p', f'mjpeg_port:={free_port()}', '-p', 'mjpeg_host:=127.0.0.1', '-p', 'mode:=server',
            '-p', f'server_url:=rtsp://127.0.0.1:{server.ports.rtsp}',
            '-p', f'api_url:=http://127.0.0.1:{server.ports.api}', '-p', f'stream_key:={ROBOT.path}',
            '-p', f'stream_user:={ROBOT.user}', '-p', 'width:=160', '-p', 'height:=120', '-p', 'fps:=10.0',
            '-p', 'audio:=false'], env={'HAVATAR_STREAM_PASSWORD': ROBOT.password, 'HAVATAR_ACCESS_TOKEN': TOKEN})
        port = free_port()
        relay = pm.start('relay_node', [ros_executable('havatar_relay', 'relay_node'), '--ros-args',
                                        '-p', 'robot_id:=robot1', '-p', f'http_port:={port}',
                                        '-p', 'http_host:=127.0.0.1', '-p', f'settings_file:={work / "s.json"}'],
                         env={'HAVATAR_ACCESS_TOKEN': TOKEN})
        for proc, line in [(speaker, 'playing audio/speaker'), (camera, 'publishing'),
                           (streaming, 'MJPEG on'), (relay, 'web UI on')]:
            proc.wait_for_output(line, timeout=30)
        base = f'http://127.0.0.1:{port}'
        topic = Onsets(place=False)
        speaker_topic(node, topic)
        diagnostics = SpeakerDiagnostics(node)
        spinner.start()
        speaker_file = SpeakerFile(wav)
        wait_until(lambda: node.count_publishers('audio/speaker') >= 2, 20, 'relay and streaming publishers')
        wait_until(lambda: server.path_ready(ROBOT.path), 40, 'server mode publishing')

        print(f'Talk latency (browser -> robot speaker), {options.bursts} bursts of {BURST_MS} ms per path')
        print(f'{"path":40} {"at":16} {"n":>4} {"p50 ms":>7} {"p95 ms":>7} {"lost":>5}')
        results: dict[str, tuple[list[float], list[float], tuple[float, float]]] = {}
        buffers: dict[str, str] = {}

        def measure(name: str, pids: list[int], run: Callable[[], list[float]]) -> None:
            assert speaker_file is not None
            cpu, cpu_speaker = CpuMeter(pids), CpuMeter([speaker.pid])
            t0 = time.time() * 1000
            depths, (drops, underruns) = len(diagnostics.depths), diagnostics.counters()
            sent = run()
            during = diagnostics.depths[depths:] or [0]
            drops, underruns = (a - b for a, b in zip(diagnostics.counters(), (drops, underruns)))
            gaps = np.diff([a for a in topic.arrivals if a >= t0])
            gaps = gaps[gaps < 500] if len(gaps) else np.zeros(1)  # within the talk
            buffers[name] = (f'max {max(during)} chunks, {drops} caught up, {underruns} underruns; '
                             f'chunk gaps p50 {np.median(gaps):.0f} p99 {np.percentile(gaps, 99):.0f} '
                             f'max {gaps.max():.0f} ms')
            heard_topic = topic.since(t0)
            heard_file = speaker_file.onsets.since(t0)
            results[name] = (latencies(sent, heard_topic)[0], latencies(sent, heard_file)[0],
                             (cpu.percent(), cpu_speaker.percent()))
            print(f'{name:40} {"audio/speaker":16} {summary(*latencies(sent, heard_topic))}')
            print(f'{"":40} {"speaker (file)":16} {summary(*latencies(sent, heard_file))}')

        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={'width': 1280, 'height': 900})
            page.add_init_script(GENERATOR)
            page.goto(f'{base}/#robot=robot1&token={TOKEN}')
            page.wait_for_function("document.getElementById('connection').textContent === 'connected'",
                                   timeout=20000)
            page.evaluate('window.__bench.ready()')
            speaker_file.start()

            def browser_local() -> list[float]:
                ptt = page.locator('#ptt').bounding_box()
                page.mouse.move(ptt['x'] + ptt['width'] / 2, ptt['y'] + ptt['height'] / 2)
                page.mouse.down()
                flowing = topic.chunks
                wait_until(lambda: topic.chunks > flowing + 25, 10, 'the talk flowing')
                first = len(page.evaluate('window.__bench.onsets'))
                run_bursts(options.bursts, lambda: page.evaluate(f'window.__bench.burst({BURST_MS}, {TONE_HZ})'))
                page.mouse.up()
                page.mouse.move(5, 5)
                return page.evaluate('window.__bench.onsets')[first:]
            measure('local: browser -> /talk/ws', [relay.pid], browser_local)
            measure('baseline local: PCM client -> /talk/ws', [relay.pid],
                    lambda: in_thread(lambda: asyncio.run(baseline_client(base, options.bursts))))

            def browser_whip() -> list[float]:
                before = len(topic.times)
                page.evaluate(f"window.__bench.whip('{server.whip_url(BROWSER_TALK.path)}', "
                              f"'{BROWSER_TALK.user}', '{BROWSER_TALK.password}')")
                deadline = time.monotonic() + 40
                while len(topic.times) == before:  # bursts until the talkback reader runs
                    assert time.monotonic() < deadline, 'no talkback on audio/speaker'
                    page.evaluate(f'window.__bench.burst({BURST_MS}, {TONE_HZ})')
                    time.sleep(PERIOD_S)
                time.sleep(1.0)
                first = len(page.evaluate('window.__bench.onsets'))
                run_bursts(options.bursts, lambda: page.evaluate(f'window.__bench.burst({BURST_MS}, {TONE_HZ})'))
                page.evaluate('window.__bench.pc.close()')
                return page.evaluate('window.__bench.onsets')[first:]
            measure('server: browser WHIP -> MediaMTX', [streaming.pid], browser_whip)
            browser.close()

        print('\nCPU while talking, % of one core (relay node, or streaming node with its ffmpeg; speaker node)')
        for name, (_, _, (carrier, player)) in results.items():
            print(f'  {name:40} {carrier:5.1f} % + {player:5.1f} %')
        print('speaker jitter buffer (target 3 chunks of 20 ms), arrival gaps on audio/speaker')
        for name in results:
            print(f'  {name:40} {buffers[name]}')
        local, base_local = results['local: browser -> /talk/ws'], results['baseline local: PCM client -> /talk/ws']
        if local[0] and base_local[0]:
            print(f'\nbrowser capture adds (p50, audio/speaker): '
                  f'{statistics.median(local[0]) - statistics.median(base_local[0]):.1f} ms')
    finally:
        if speaker_file is not None:
            speaker_file.stop()
        node.destroy_node()
        rclpy.shutdown()
        pm.stop_all()
        lease.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
