// Hearing the robot: one AudioContext plays either the WebRTC audio track (server mode,
// Opus through MediaMTX) or the robot's microphone over /audio/ws (local mode, PCM into
// an AudioWorklet jitter buffer). Controls: a large "Enable sound" until sound runs (browsers
// block it before a gesture), then mute and volume, remembered in localStorage; every
// control also works by eye-gaze dwell. Level meters: meter(streamOrNode, canvas).
import { parseFrame } from './audio-buffer.js';

const $ = (id) => document.getElementById(id);
const PREFS_KEY = 'havatar.sound';
const RATE = 48000;

const prefs = Object.assign({ enabled: false, muted: false, volume: 0.8 },
  JSON.parse(localStorage.getItem(PREFS_KEY) || '{}'));
let ctx = null;        // AudioContext
let gain = null;       // volume and mute: what the person hears
let input = null;      // where the robot's sound enters (meter taps here, before the volume)
let worklet = null;    // local-mode player
let rtcSource = null;  // server-mode player (MediaStreamAudioSourceNode)
let rtcStream = null;
let socket = null;
let socketUrl = null;  // set by listenToRobot(): the page is the robot's own
let retryMs = 500;
let retryTimer = null;
let lastFrameMs = 0;

function savePrefs() { localStorage.setItem(PREFS_KEY, JSON.stringify(prefs)); }

function ensureContext() {
  if (ctx) return ctx;
  ctx = new AudioContext({ latencyHint: 'interactive', sampleRate: RATE });
  input = ctx.createGain();
  gain = ctx.createGain();
  const output = ctx.createAnalyser();  // what reaches the speakers (tests and benchmarks read it)
  output.fftSize = 4096;
  input.connect(gain).connect(ctx.destination);
  gain.connect(output);
  window.havatarAudio = { context: ctx, output, input, peakHz: () => peakHz(output), stats: workletStats };
  ctx.onstatechange = showState;
  applyVolume();
  meter(input, $('robot-meter'));
  return ctx;
}

function applyVolume() {
  if (gain) gain.gain.setTargetAtTime(prefs.muted ? 0 : prefs.volume, ctx.currentTime, 0.02);
  $('sound-mute').setAttribute('aria-pressed', String(prefs.muted));
  $('sound-mute').textContent = prefs.muted ? 'Unmute' : 'Mute';
  $('sound-volume').value = String(prefs.volume);
}

function running() { return ctx && ctx.state === 'running'; }

function showState() {
  $('sound-enable').hidden = running();
  $('sound-controls').hidden = !running();
  if (running()) { if (rtcStream) playStream(rtcStream); else if (!retryTimer) connectSocket(); }
  const via = rtcSource ? 'WebRTC' : (socket && socket.readyState === WebSocket.OPEN ? 'robot (local)' : 'none');
  $('sound-state').textContent = running() ? `sound: ${via}` : 'sound is off';
}

/** Turn sound on (must run inside a user gesture: click, key, or a dwell's click). */
export async function enableSound() {
  ensureContext();
  await ctx.resume();
  prefs.enabled = true;
  savePrefs();
  showState();
}

// ---- local mode: /audio/ws -> AudioWorklet ------------------------------------------------
/** The page is served by the robot: play its microphone from `/audio/ws` (token in the query). */
export function listenToRobot(token) {
  socketUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/audio/ws?token=${encodeURIComponent(token)}`;
  ensureContext();
  showState();
}

async function connectSocket() {
  if (!socketUrl || socket || rtcStream || !running()) return;
  if (!worklet) {
    await ctx.audioWorklet.addModule(new URL('./audio-worklet.js', import.meta.url));
    if (worklet) return;
    worklet = new AudioWorkletNode(ctx, 'havatar-robot-audio', { outputChannelCount: [1] });
    worklet.connect(input);
  }
  if (socket || rtcStream) return;
  socket = new WebSocket(socketUrl);
  socket.binaryType = 'arraybuffer';
  socket.onopen = () => { retryMs = 500; showState(); };
  socket.onmessage = (e) => {
    const frame = parseFrame(e.data);
    lastFrameMs = frame.stampMs;
    const samples = frame.rate === ctx.sampleRate ? frame.samples : resample(frame.samples, frame.rate, ctx.sampleRate);
    worklet.port.postMessage({ samples }, [samples.buffer]);
  };
  socket.onclose = () => {
    socket = null;
    retryTimer = setTimeout(() => { retryTimer = null; connectSocket(); }, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
    showState();
  };
}

function closeSocket() {
  if (socket) { const s = socket; socket = null; s.onclose = null; s.close(); }
}

function resample(samples, from, to) {
  const out = new Float32Array(Math.round(samples.length * to / from));
  for (let i = 0; i < out.length; i++) {
    const x = i * from / to, j = Math.floor(x), f = x - j;
    out[i] = samples[j] * (1 - f) + (samples[Math.min(j + 1, samples.length - 1)] || 0) * f;
  }
  return out;
}

function workletStats() {
  if (!worklet) return Promise.resolve(null);
  return new Promise((resolve) => {
    worklet.port.onmessage = (e) => resolve({ ...e.data, lastFrameMs });
    worklet.port.postMessage('stats');
  });
}

// ---- server mode: the WebRTC audio track ----------------------------------------------------
/** Play the audio of a WebRTC stream (the <video> stays muted: sound goes through WebAudio). */
export function attachStream(stream) {
  if (!stream.getAudioTracks().length) return;
  rtcStream = stream;
  closeSocket();
  ensureContext();
  showState();
}

function playStream(stream) {
  if (rtcSource && rtcSource.mediaStream === stream) return;
  if (rtcSource) rtcSource.disconnect();
  rtcSource = ctx.createMediaStreamSource(stream);
  rtcSource.connect(input);
}

setInterval(() => {  // a closed peer connection ends its tracks: back to the robot's socket
  if (rtcStream && rtcStream.getAudioTracks().every((t) => t.readyState === 'ended')) {
    rtcStream = null;
    if (rtcSource) { rtcSource.disconnect(); rtcSource = null; }
    showState();
  }
}, 1000);

// ---- level meters ----------------------------------------------------------------------------
/**
 * Draw the level of `source` (a MediaStream or an AudioNode) on `canvas` until stop() is
 * called; returns {analyser, stop}. For the robot's microphone and the person's own.
 */
export function meter(source, canvas) {
  ensureContext();
  const node = source instanceof MediaStream ? ctx.createMediaStreamSource(source) : source;
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  node.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  let frame = 0;
  const ended = () => source instanceof MediaStream && source.getTracks().every((t) => t.readyState === 'ended');
  const draw = () => {
    if (ended()) { stop(); return; }
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    const db = 10 * Math.log10(sum / data.length + 1e-12);  // dBFS
    const level = Math.max(0, Math.min(1, (db + 60) / 60));
    if (canvas) {
      const g = canvas.getContext('2d');
      g.clearRect(0, 0, canvas.width, canvas.height);
      g.fillStyle = level > 0.9 ? '#ff5252' : '#4caf50';
      g.fillRect(0, 0, canvas.width * level, canvas.height);
      canvas.dataset.level = level.toFixed(2);
    }
    frame = requestAnimationFrame(draw);
  };
  const stop = () => {
    cancelAnimationFrame(frame);
    analyser.disconnect();
    if (node !== source) node.disconnect();
    if (canvas) { canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height); canvas.dataset.level = '0'; }
  };
  draw();
  return { analyser, stop };
}

function peakHz(analyser) {
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  let best = 0;
  for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
  return { hz: best * analyser.context.sampleRate / analyser.fftSize, db: bins[best] };
}

// ---- controls (large, and dwell-activated for eye gaze) -------------------------------------
function dwellClick(button) {
  let timer = null;
  button.addEventListener('pointerenter', (e) => {
    if (e.pointerType === 'touch') return;
    button.classList.add('dwelling');
    timer = setTimeout(() => { button.classList.remove('dwelling'); button.click(); },
      parseInt(($('dwell-ms') || {}).value, 10) || 800);
  });
  const cancel = () => { clearTimeout(timer); button.classList.remove('dwelling'); };
  button.addEventListener('pointerleave', cancel);
  button.addEventListener('pointerdown', cancel);  // a real press clicks by itself
}

export function initSound() {
  $('sound-enable').onclick = () => enableSound();
  $('sound-mute').onclick = () => { prefs.muted = !prefs.muted; savePrefs(); applyVolume(); };
  const step = (d) => { prefs.volume = Math.round(Math.max(0, Math.min(1, prefs.volume + d)) * 20) / 20; prefs.muted = false; savePrefs(); applyVolume(); };
  $('sound-down').onclick = () => step(-0.1);
  $('sound-up').onclick = () => step(0.1);
  $('sound-volume').oninput = (e) => { prefs.volume = parseFloat(e.target.value); savePrefs(); applyVolume(); };
  document.querySelectorAll('.sound .gaze').forEach(dwellClick);
  applyVolume();
  ensureContext();
  if (prefs.enabled) ctx.resume();  // runs at once where the browser allows it, else waits for the button
  showState();
}
