// Runs web/talk-worklet.js under node: a sine at `inRate` in 128-sample blocks, as an
// AudioContext would feed it; prints JSON: frames posted, samples out, and the samples.
// Usage: node talk_worklet_sim.mjs <worklet.js> <inRate> <toneHz> <seconds>
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const [file, inRate, toneHz, seconds] = process.argv.slice(2);
const posted = [];
let Processor = null;
const context = {
  sampleRate: Number(inRate),
  AudioWorkletProcessor: class { constructor() { this.port = { postMessage: (m) => posted.push(m) }; } },
  registerProcessor: (name, cls) => { Processor = cls; },
};
vm.runInNewContext(readFileSync(file, 'utf8'), context);
const p = new Processor({ processorOptions: { targetRate: 48000, frameSamples: 960 } });
const total = Math.round(Number(seconds) * Number(inRate));
for (let start = 0; start < total; start += 128) {
  const block = new Float32Array(128);
  for (let i = 0; i < 128; i++) block[i] = 0.5 * Math.sin(2 * Math.PI * Number(toneHz) * (start + i) / Number(inRate));
  p.process([[block]]);
}
const samples = [];
for (const m of posted) samples.push(...new Int16Array(m.pcm));
console.log(JSON.stringify({ frames: posted.length, levels: posted.map((m) => m.level), samples }));
