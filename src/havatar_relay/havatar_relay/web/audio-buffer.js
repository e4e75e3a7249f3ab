// Robot audio for the browser, the pure part: the wire frame of /audio/ws and a jitter
// buffer that stays bounded. No WebAudio here: the AudioWorklet (audio-worklet.js) runs it,
// and test/audio_buffer_test.mjs runs it under node (an hour with clock skew).

// One binary WebSocket message: a little-endian header, then S16LE PCM (interleaved).
// Written once in havatar_relay/audio_stream.py (FRAME_HEADER), checked equal by a test.
export const FRAME = {
  headerBytes: 20,  // u32 sequence, u32 sample rate, u16 channels, u16 reserved, f64 capture time (ms since epoch)
  version: 1,       // the reserved field holds it
};

/** Parse one frame: {sequence, rate, channels, stampMs, samples (mono Float32, -1..1)}. */
export function parseFrame(buffer) {
  const view = new DataView(buffer);
  const sequence = view.getUint32(0, true);
  const rate = view.getUint32(4, true);
  const channels = view.getUint16(8, true) || 1;
  const stampMs = view.getFloat64(12, true);
  const pcm = new Int16Array(buffer, FRAME.headerBytes, (buffer.byteLength - FRAME.headerBytes) >> 1);
  const frames = Math.floor(pcm.length / channels);
  const samples = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += pcm[i * channels + c];
    samples[i] = sum / channels / 32768;
  }
  return { sequence, rate, channels, stampMs, samples };
}

/**
 * A ring of samples between the network and the audio clock.
 *
 * Playback starts once `targetMs` is queued. The sender's clock and the sound card's never
 * agree exactly, so the depth is steered to the target: while the smoothed depth is more
 * than `slackMs` above the target, samples are skipped, while below it samples are repeated:
 * one per render block per `slackMs` off, at most 4 (3 % at 128-sample blocks; a skew of a
 * few tenths of a percent costs one sample every few blocks, inaudible on speech). A burst
 * beyond `maxMs` drops the oldest samples back to the target; an empty buffer plays silence
 * and waits for the target again (an underrun); each underrun raises the target by 10 ms (a
 * loaded machine or a jittery Wi-Fi), 10 s without one lowers it by 5 ms back towards
 * `targetMs`. The ring never grows.
 */
export class JitterBuffer {
  constructor({ rate = 48000, targetMs = 30, maxMs = 200, slackMs = 5 } = {}) {
    this.rate = rate;
    this.target = Math.round(targetMs * rate / 1000);
    this.minTarget = this.target;  // an underrun raises the target 10 ms (up to maxMs / 2);
    this.maxTarget = Math.round(maxMs * rate / 2000);  // 10 s without one lowers it 5 ms again
    this.sinceUnderrun = 0;
    this.max = Math.round(maxMs * rate / 1000);
    this.slack = Math.round(slackMs * rate / 1000);
    this.ring = new Float32Array(this.max + 1);
    this.read = 0;
    this.write = 0;
    this.playing = false;
    this.smoothed = 0;
    this.stats = { pushed: 0, played: 0, overflowDropped: 0, skipped: 0, repeated: 0, underruns: 0, maxDepth: 0 };
  }

  get depth() { return (this.write - this.read + this.ring.length) % this.ring.length; }

  /** Queue `samples` (Float32Array at `rate`). */
  push(samples) {
    let input = samples;
    if (input.length > this.max) input = input.subarray(input.length - this.target);
    if (this.depth + input.length > this.max) {  // a burst: keep the newest, back to the target
      const keep = Math.max(0, this.target - input.length);
      const drop = this.depth - keep;
      this.read = (this.read + drop) % this.ring.length;
      this.stats.overflowDropped += drop;
      this.smoothed = keep + input.length;
    }
    for (let i = 0; i < input.length; i++) {
      this.ring[this.write] = input[i];
      this.write = (this.write + 1) % this.ring.length;
    }
    this.stats.pushed += input.length;
    this.stats.maxDepth = Math.max(this.stats.maxDepth, this.depth);
  }

  /** Fill `out` (one render block) and return it. */
  pull(out) {
    const n = out.length;
    if (!this.playing) {
      if (this.depth < this.target) { out.fill(0); return out; }
      this.playing = true;
      this.smoothed = this.depth;
    }
    this.smoothed += (this.depth - this.smoothed) * 0.02;
    // steer: skip (or repeat) up to 4 samples a block, more the further off the target
    const off = this.smoothed - this.target;
    const k = Math.abs(off) <= this.slack ? 0 : Math.max(-4, Math.min(4, Math.round(off / this.slack)));
    let take = n;
    if (k > 0 && this.depth > n + k) { take = n + k; this.stats.skipped += k; }
    else if (k < 0) { take = n + k; this.stats.repeated -= k; }
    const available = Math.min(take, this.depth);
    for (let i = 0; i < n; i++) {  // `take` input samples spread over `n` outputs
      const j = Math.min(Math.floor(i * take / n), available - 1);
      out[i] = j >= 0 ? this.ring[(this.read + j) % this.ring.length] : 0;
    }
    if (available < take) {  // ran dry: silence the rest and wait for the target again
      for (let i = Math.floor(available * n / take); i < n; i++) out[i] = 0;
      this.playing = false;
      this.stats.underruns++;
      this.target = Math.min(this.maxTarget, this.target + Math.round(this.rate / 100));
      this.sinceUnderrun = 0;
    } else if ((this.sinceUnderrun += n) > 10 * this.rate && this.target > this.minTarget) {
      this.target = Math.max(this.minTarget, this.target - Math.round(this.rate / 200));
      this.sinceUnderrun = 0;
    }
    this.read = (this.read + available) % this.ring.length;
    this.stats.played += n;
    return out;
  }

  /** Milliseconds of audio queued now. */
  depthMs() { return this.depth * 1000 / this.rate; }
}
