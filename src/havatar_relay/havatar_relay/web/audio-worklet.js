// AudioWorklet: plays the robot's microphone (local mode) from a bounded jitter buffer.
// The page posts {samples: Float32Array} per frame; 'stats' asks for the buffer's figures.
import { JitterBuffer } from './audio-buffer.js';

class RobotAudioProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.buffer = new JitterBuffer({ rate: sampleRate, ...(options.processorOptions || {}) });
    this.port.onmessage = (e) => {
      if (e.data === 'stats') this.port.postMessage({ ...this.buffer.stats, depthMs: this.buffer.depthMs() });
      else if (e.data && e.data.samples) this.buffer.push(e.data.samples);
    };
  }

  process(inputs, outputs) {
    const out = outputs[0];
    this.buffer.pull(out[0]);
    for (let c = 1; c < out.length; c++) out[c].set(out[0]);
    return true;
  }
}

registerProcessor('havatar-robot-audio', RobotAudioProcessor);
