/**
 * Micro-benchmark: KlineFrameParser (byte scanner) against the floor a bare `ws` client pays,
 * `JSON.parse(buf.toString('utf8'))` per frame, on realistic combined frames from the simulator's
 * ground truth, each a Buffer view into one larger chunk (as ws hands them over from a socket read).
 *
 *   node bench/parse-micro.ts [frames=200000] [rounds=5]
 *
 * Prints ns/frame and frames/s for: the floor; the parser alone (what every frame pays: validation,
 * t/T/E/x/n/f/L, the stream); the parser plus `raw` (what the relay touches per delivered candle);
 * the parser plus every string field (worst case: a sink that reads all decimals). Not a test:
 * numbers vary by machine.
 */
import { KlineFrameParser, isCandle, klineStreamName } from '../src/venues/binance/protocol.ts';
import { binanceSpot } from '../src/venues/binance/spot.ts';
import { registerVenueStreams } from '../src/upstream/venue.ts';
import { systemClock } from '../src/core/clock.ts';
import { StatusStream } from '../src/core/status.ts';
import { StreamRegistry } from '../src/core/streams.ts';
import { klineAt, klineEventJson, openKlineAt } from '../src/venues/binance/simulator/klines.ts';

const FRAMES = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.argv[3] ?? 5);

const symbols = ['btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt', 'adausdt', 'dogeusdt', 'ethbtc'];
const intervals = ['1s', '1m', '5m', '1h'] as const;
const registry = new StreamRegistry();
registerVenueStreams(registry, binanceSpot, symbols, intervals);
const parser = new KlineFrameParser({ venue: 'binance', registry, status: new StatusStream(), clock: systemClock });

// 1024 distinct realistic frames (mostly open updates, some closed), cycled; views into one chunk.
const t0 = Date.UTC(2026, 10, 3, 12, 0);
const texts: string[] = [];
for (let i = 0; i < 1024; i++) {
  const sym = symbols[i % symbols.length]!;
  const interval = intervals[(i >> 3) % intervals.length]!;
  const openTime = t0 + Math.floor(i / 32) * 3_600_000;
  const k = i % 10 === 0 ? klineAt(sym, interval, openTime) : openKlineAt(sym, interval, openTime, (i % 97) / 97);
  texts.push(`{"stream":"${klineStreamName(sym, interval)}","data":${klineEventJson(k, openTime + 1500)}}`);
}
const chunk = Buffer.from(texts.join(''));
const frames: Buffer[] = [];
for (let i = 0, at = 0; i < texts.length; i++) {
  const len = Buffer.byteLength(texts[i]!);
  frames.push(chunk.subarray(at, at + len));
  at += len;
}
const avgBytes = chunk.length / frames.length;

let sink = 0;
function runJson(): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < FRAMES; i++) {
    const v = JSON.parse(frames[i & 1023]!.toString('utf8')) as { data: { k: { t: number } } };
    sink += v.data.k.t & 1;
  }
  return Number(process.hrtime.bigint() - start);
}
function runParser(): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < FRAMES; i++) {
    const out = parser.parse(frames[i & 1023]!, i);
    if (isCandle(out)) sink += out.openTime & 1;
  }
  return Number(process.hrtime.bigint() - start);
}
function runParserRaw(): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < FRAMES; i++) {
    const out = parser.parse(frames[i & 1023]!, i);
    if (isCandle(out)) sink += out.raw!.length & 1;
  }
  return Number(process.hrtime.bigint() - start);
}
function runParserAll(): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < FRAMES; i++) {
    const out = parser.parse(frames[i & 1023]!, i);
    if (isCandle(out)) {
      sink +=
        (out.open.length + out.high.length + out.low.length + out.close.length + out.volume.length + (out.quoteVolume ?? '').length +
          (out.takerBuyBaseVolume ?? '').length + (out.takerBuyQuoteVolume ?? '').length + (out.ignore ?? '').length) & 1;
    }
  }
  return Number(process.hrtime.bigint() - start);
}

// Warm up all, then alternate rounds so none benefits from ordering.
const runs = { json: runJson, fast: runParser, raw: runParserRaw, all: runParserAll };
const times: Record<keyof typeof runs, number[]> = { json: [], fast: [], raw: [], all: [] };
for (const run of Object.values(runs)) run();
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, run] of Object.entries(runs) as [keyof typeof runs, () => number][]) times[name].push(run());
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ns = (name: keyof typeof runs): number => median(times[name]) / FRAMES;
if (parser.parseErrors !== 0 || parser.slowPath !== 0) throw new Error(`unexpected slow path: ${parser.slowPath}, errors: ${parser.parseErrors}`);
const line = (label: string, name: keyof typeof runs): string =>
  `${label.padEnd(34)} ${ns(name).toFixed(0).padStart(6)} ns/frame  ${(1e9 / ns(name) / 1e6).toFixed(2)} M frames/s  ×floor ${(ns(name) / ns('json')).toFixed(2)}`;
console.log(`frames: ${FRAMES} x ${ROUNDS} rounds, avg ${avgBytes.toFixed(0)} bytes/frame (sink ${sink & 1})`);
console.log(line('JSON.parse(buf.toString()) (floor)', 'json'));
console.log(line('KlineFrameParser.parse(buf)', 'fast'));
console.log(line('  + raw (relay path)', 'raw'));
console.log(line('  + all 9 string fields', 'all'));
