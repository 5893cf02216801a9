/**
 * The cost of decoding one gzip frame (upstream/decode.ts), BingX-sized, by method.
 *
 *   node bench/gunzip.ts [--frames 200000]
 *
 * Frames: BingX spot and swap kline pushes and a spot ping, gzipped as the venue sends them (one
 * member each), cycled. Methods, each on the same frames, each after a warm-up:
 *   - gunzipSync + maxOutputLength (what ships: decode.ts GzipFrameDecoder),
 *   - gunzipSync without a cap (what the cap costs),
 *   - inflateRawSync after skipping the 10-byte gzip header by hand (what the header/trailer check costs),
 *   - async gunzip with a callback, awaited one frame at a time (what a non-blocking inflate costs per frame,
 *     with frames kept in order),
 *   - JSON.parse of the decoded text, for scale (the parser's own floor).
 * Prints µs per frame. A benchmark, not a test: figures depend on the machine.
 */
import { gunzip, gunzipSync, gzipSync, inflateRawSync } from 'node:zlib';
import { promisify } from 'node:util';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const FRAMES = Number(arg('frames', '200000'));
const MAX = 1024 * 1024;

const texts = [
  '{"code":0,"data":{"E":1649832726550,"K":{"T":1649832779999,"c":"40017.48","h":"40027.83","i":"1min","l":"40017.48","n":13,"o":"40025.42","q":"2693.492344","s":"BTC-USDT","t":1649832720000,"v":"0.067295"},"e":"kline","s":"BTC-USDT"},"dataType":"BTC-USDT@kline_1min","success":true}',
  '{"code":0,"dataType":"BTC-USDT@kline_1m","s":"BTC-USDT","data":[{"c":"28909.0","o":"28915.4","h":"28915.4","l":"28896.1","v":"27.6919","T":1690907580000}]}',
  '{"ping":"2177e6a9a17a4a0d8b2b6b0a2b1f4e3c","time":"2026-12-01T11:00:05.123+0800"}',
];
const frames = texts.map((t) => gzipSync(t));

function time(label: string, run: (frame: Buffer) => unknown): void {
  for (let i = 0; i < 5000; i++) run(frames[i % frames.length] as Buffer);
  const start = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < FRAMES; i++) {
    const out = run(frames[i % frames.length] as Buffer);
    if (out !== undefined) sink++;
  }
  const ns = Number(process.hrtime.bigint() - start);
  console.log(`${label.padEnd(44)} ${(ns / FRAMES / 1000).toFixed(2).padStart(7)} µs/frame  (${sink} frames)`);
}

async function timeAsync(label: string, frames_: number): Promise<void> {
  const inflate = promisify(gunzip);
  const opts = { maxOutputLength: MAX };
  for (let i = 0; i < 2000; i++) await inflate(frames[i % frames.length] as Buffer, opts);
  const start = process.hrtime.bigint();
  for (let i = 0; i < frames_; i++) await inflate(frames[i % frames.length] as Buffer, opts);
  const ns = Number(process.hrtime.bigint() - start);
  console.log(`${label.padEnd(44)} ${(ns / frames_ / 1000).toFixed(2).padStart(7)} µs/frame  (${frames_} frames)`);
}

console.log(`gzip frame sizes: ${frames.map((f) => f.length).join(', ')} bytes (decoded ${texts.map((t) => t.length).join(', ')})`);
const capped = { maxOutputLength: MAX };
time('gunzipSync, maxOutputLength (ships)', (f) => gunzipSync(f, capped));
time('gunzipSync, no cap', (f) => gunzipSync(f));
// No FEXTRA/FNAME/FCOMMENT in Node's or BingX's members: the deflate stream starts at byte 10, 8 trailer bytes.
time('inflateRawSync past the header, capped', (f) => inflateRawSync(f.subarray(10, f.length - 8), capped));
const decoded = frames.map((f) => gunzipSync(f).toString('utf8'));
let j = 0;
time('JSON.parse of the decoded text (scale)', () => JSON.parse(decoded[j++ % decoded.length] as string) as unknown);
await timeAsync('async gunzip, one frame at a time', Math.min(FRAMES, 50_000));
