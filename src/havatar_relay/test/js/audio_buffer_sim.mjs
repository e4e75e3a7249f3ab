// Runs web/audio-buffer.js's JitterBuffer against simulated clocks (called by test_audio_buffer.py).
// argv: JSON {seconds, skew, jitterMs, stallEveryS, stallMs, seed}; prints JSON figures.
import { JitterBuffer, FRAME, parseFrame } from '../../havatar_relay/web/audio-buffer.js';

const cfg = JSON.parse(process.argv[2] || '{}');
if (cfg.frameHex) {  // parse a frame the relay encoded; print it with the wire constants
  const bytes = Buffer.from(cfg.frameHex, 'hex');
  const f = parseFrame(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  console.log(JSON.stringify({ FRAME, parsed: { ...f, samples: Array.from(f.samples) } }));
  process.exit(0);
}
const rate = 48000, chunk = 960, block = 128;
const { seconds = 3600, skew = 0, jitterMs = 0, stallEveryS = 0, stallMs = 0, seed = 1 } = cfg;
let s = seed;
const random = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };

const jb = new JitterBuffer({ rate });
const out = new Float32Array(block);
const senderRate = rate * (1 + skew);  // samples per second of the robot's clock, in the browser's seconds
let sent = 0, nextBlock = 0, produced = 0;
const depths = [];  // [t, depthMs] once a second
let nextReport = 0, lastStall = 0, lastArrival = 0, value = 0, checkErrors = 0, lastOut = null;
const end = seconds;
function arrivalOf(k) {  // when chunk k reaches the page
  const due = (k + 1) * chunk / senderRate;  // captured when complete
  let arrival = due + random() * jitterMs / 1000;
  if (stallEveryS && due - lastStall > stallEveryS) { lastStall = due; arrival += stallMs / 1000; }
  return Math.max(arrival, lastArrival);  // one TCP stream: in order, a stall holds back what follows
}
let arrival = arrivalOf(0);
while (true) {
  const blockTime = nextBlock * block / rate;
  if (blockTime > end) break;
  if (arrival <= blockTime) {
    const samples = new Float32Array(chunk);
    for (let i = 0; i < chunk; i++) samples[i] = ((produced + i) % 1000) / 1000;  // a ramp: continuity check
    produced += chunk;
    jb.push(samples);
    sent++;
    lastArrival = arrival;
    arrival = arrivalOf(sent);
  } else {
    jb.pull(out);
    if (cfg.checkContinuity && jb.playing) {
      for (let i = 0; i < block; i++) {
        if (lastOut !== null && Math.abs(((out[i] - lastOut + 1) % 1) - 0.001) > 1e-6) checkErrors++;
        lastOut = out[i];
      }
    }
    nextBlock++;
    if (blockTime >= nextReport) { depths.push([Math.round(blockTime), jb.depthMs()]); nextReport += 1; }
  }
}
const mean = (arr) => arr.reduce((a, b) => a + b, 0) / Math.max(1, arr.length);
const window = (from, to) => depths.filter(([t]) => t >= from && t < to).map(([, d]) => d);
console.log(JSON.stringify({
  ...jb.stats, capacityMs: jb.ring.length * 1000 / rate, maxDepthMs: jb.stats.maxDepth * 1000 / rate,
  targetMs: jb.target * 1000 / rate, firstMinuteMs: mean(window(10, 70)), lastMinuteMs: mean(window(seconds - 60, seconds)),
  maxDepthSeenMs: Math.max(...depths.map(([, d]) => d)), continuityErrors: checkErrors, seconds,
}));
