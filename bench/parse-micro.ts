/**
 * Micro-benchmark: KlineFrameParser (fast scanner) against the floor a bare `ws` client pays,
 * JSON.parse per frame, on realistic combined frames from the simulator's ground truth.
 *
 *   node bench/parse-micro.ts [frames=200000] [rounds=5]
 *
 * Prints ns/frame and frames/s for each, and the ratio. Not a test: numbers vary by machine.
 */
import { KlineFrameParser, isCandle, klineStreamName, registerBinanceStreams } from '../src/binance/protocol.ts';
import { systemClock } from '../src/core/clock.ts';
import { StatusStream } from '../src/core/status.ts';
import { StreamRegistry } from '../src/core/streams.ts';
import { klineAt, klineEventJson, openKlineAt } from '../src/simulator/klines.ts';

const FRAMES = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.argv[3] ?? 5);

const symbols = ['btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt', 'adausdt', 'dogeusdt', 'ethbtc'];
const intervals = ['1s', '1m', '5m', '1h'];
const registry = new StreamRegistry();
registerBinanceStreams(registry, symbols, intervals);
const parser = new KlineFrameParser({ registry, status: new StatusStream(), clock: systemClock });

// 1024 distinct realistic frames (mostly open updates, some closed), cycled.
const t0 = Date.UTC(2026, 10, 3, 12, 0);
const texts: string[] = [];
for (let i = 0; i < 1024; i++) {
  const sym = symbols[i % symbols.length]!;
  const interval = intervals[(i >> 3) % intervals.length]!;
  const openTime = t0 + Math.floor(i / 32) * 3_600_000;
  const k = i % 10 === 0 ? klineAt(sym, interval, openTime) : openKlineAt(sym, interval, openTime, (i % 97) / 97);
  // Through a Buffer, as ws delivers it: a flat one-byte string, not a concatenation (cons) string.
  texts.push(Buffer.from(`{"stream":"${klineStreamName(sym, interval)}","data":${klineEventJson(k, openTime + 1500)}}`).toString('utf8'));
}
const avgBytes = texts.reduce((n, t) => n + t.length, 0) / texts.length;

let sink = 0;
function runJson(): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < FRAMES; i++) {
    const v = JSON.parse(texts[i & 1023]!) as { data: { k: { t: number } } };
    sink += v.data.k.t & 1;
  }
  return Number(process.hrtime.bigint() - start);
}
function runParser(): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < FRAMES; i++) {
    const out = parser.parse(texts[i & 1023]!, i);
    if (isCandle(out)) sink += out.openTime & 1;
  }
  return Number(process.hrtime.bigint() - start);
}

// Warm up both, then alternate rounds so neither benefits from ordering.
runJson();
runParser();
const json: number[] = [];
const fast: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  json.push(runJson());
  fast.push(runParser());
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const jsonNs = median(json) / FRAMES;
const fastNs = median(fast) / FRAMES;
if (parser.parseErrors !== 0 || parser.slowPath !== 0) throw new Error(`unexpected slow path: ${parser.slowPath}, errors: ${parser.parseErrors}`);
console.log(`frames: ${FRAMES} x ${ROUNDS} rounds, avg ${avgBytes.toFixed(0)} bytes/frame (sink ${sink & 1})`);
console.log(`JSON.parse (floor)     ${jsonNs.toFixed(0).padStart(6)} ns/frame  ${(1e9 / jsonNs / 1e6).toFixed(2)} M frames/s`);
console.log(`KlineFrameParser       ${fastNs.toFixed(0).padStart(6)} ns/frame  ${(1e9 / fastNs / 1e6).toFixed(2)} M frames/s  (typed Candle + raw)`);
console.log(`ratio parser/JSON.parse ${(fastNs / jsonNs).toFixed(2)}`);
