// AudioWorklet of talk.js: the microphone, resampled to the robot's rate (linear), as
// 16-bit frames of `frameSamples` posted to the page with their RMS level (0..1).
// Linear interpolation without a low-pass: fine for speech from a 44.1/48 kHz context.
class TalkCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.step = sampleRate / o.targetRate;  // input samples per output sample
    this.frame = new Int16Array(o.frameSamples);
    this.fill = 0;
    this.pos = 0;       // input position of the next output sample, in this block
    this.prev = 0;      // last input sample of the previous block
    this.sum = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    // output sample at input position pos (-1 = the previous block's last sample)
    while (this.pos < input.length - 1) {
      const i = Math.floor(this.pos), f = this.pos - i;
      const a = i < 0 ? this.prev : input[i];
      this.put(a + (input[i + 1] - a) * f);
      this.pos += this.step;
    }
    this.pos -= input.length;
    this.prev = input[input.length - 1];
    return true;
  }

  put(v) {
    v = Math.max(-1, Math.min(1, v));
    this.frame[this.fill++] = v < 0 ? v * 32768 : v * 32767;
    this.sum += v * v;
    if (this.fill === this.frame.length) {
      const pcm = this.frame.slice().buffer;
      this.port.postMessage({ pcm, level: Math.sqrt(this.sum / this.fill) }, [pcm]);
      this.fill = 0;
      this.sum = 0;
    }
  }
}
registerProcessor('havatar-talk-capture', TalkCapture);
