/**
 * The resume history's memory per stream, and replay throughput from it to one client.
 *
 *   node --expose-gc bench/history.ts [--streams 1000] [--candles 1440]
 *
 * Memory: RSS, heap and external (Buffer) growth after filling a relay's history with `--candles`
 * closed 1m candles (real Binance kline events from the simulator) on each of `--streams` streams,
 * divided by streams and by candles. Throughput: one ws client (in this process) connects with
 * `since` at the oldest candle on 1 stream, then on 100, and the candles/s it receives are printed.
 * A benchmark, not a test: figures depend on the machine.
 */
import { pino } from 'pino';
import { WebSocket } from 'ws';
import type { Candle } from '../src/core/candle.ts';
import type { Clock } from '../src/core/clock.ts';
import { StatusStream } from '../src/core/status.ts';
import { StreamRegistry } from '../src/core/streams.ts';
import { EnvSchema } from '../src/config/schema.ts';
import { RelayServer } from '../src/relay/server.ts';
import { klineAt, klineEventJson } from '../src/venues/binance/simulator/klines.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const STREAMS = Number(arg('streams', '1000'));
const CANDLES = Number(arg('candles', '1440'));
const MIN = 60_000;
const NOW = Math.floor(Date.now() / MIN) * MIN;
const clock: Clock = { now: () => NOW + 1, monotonic: () => performance.now() };

const gc = (globalThis as { gc?: () => void }).gc;
function settle(): NodeJS.MemoryUsage {
  gc?.();
  gc?.();
  return process.memoryUsage();
}

const registry = new StreamRegistry();
const refs = Array.from({ length: STREAMS }, (_, i) => registry.register('binance', `h${i}usdt@kline_1m`, `H${i}USDT`, '1m'));
const config = EnvSchema.parse({ CONNECTOR_RELAY_HOST: '127.0.0.1', CONNECTOR_RELAY_PORT: 0, CONNECTOR_RELAY_HISTORY_CANDLES: CANDLES, CONNECTOR_LOG_LEVEL: 'silent' });
const relay = new RelayServer({
  config: { ...config.relay, maxStreamsPerClient: 100_000 },
  status: new StatusStream(),
  log: pino({ level: 'silent' }),
  clock,
  resolve: (name) => registry.byName(name),
});
const { port } = await relay.listen();

function candle(i: number, openTime: number): Candle {
  const ref = refs[i];
  if (ref === undefined) throw new Error('no stream');
  const k = klineAt(ref.symbol.toLowerCase(), '1m', openTime);
  // As the parser hands it over: the event bytes as a view into a larger socket read.
  const read = Buffer.from(`{"stream":"${ref.name}","data":${klineEventJson(k, openTime + MIN)}}`);
  const raw = read.subarray(read.indexOf('"data":') + 7, read.length - 1);
  return { stream: ref, openTime, closeTime: openTime + MIN - 1, eventTime: openTime + MIN, closed: true, open: k.o, high: k.h, low: k.l, close: k.c, volume: k.v, source: 'ws', raw, receivedAt: 0 };
}

const before = settle();
const first = NOW - CANDLES * MIN;
for (let c = 0; c < CANDLES; c++) {
  const batch: Candle[] = [];
  for (let i = 0; i < STREAMS; i++) batch.push(candle(i, first + c * MIN));
  relay.deliver(batch);
}
const after = settle();
const stats = relay.stats();
const per = (bytes: number): string => `${Math.round(bytes / STREAMS).toLocaleString('en')} B/stream (${Math.round(bytes / STREAMS / CANDLES)} B/candle)`;
console.log(`history: ${STREAMS} streams × ${CANDLES} candles = ${stats.historyCandles} candles, ${stats.historyBytes} payload bytes (${Math.round(stats.historyBytes / stats.historyCandles)} B/candle)`);
console.log(`  rss      +${per(after.rss - before.rss)}`);
console.log(`  heap     +${per(after.heapUsed - before.heapUsed)}`);
console.log(`  external +${per(after.external + after.arrayBuffers - before.external - before.arrayBuffers)}`);

async function replay(streams: number): Promise<void> {
  const names = refs.slice(0, streams).map((r) => r.name);
  const expected = streams * CANDLES;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/stream?streams=${names.join('/')}&since=${first}`);
    let got = 0;
    ws.on('message', () => {
      if (++got === expected) {
        ws.close();
        resolve();
      }
    });
    ws.on('error', reject);
  });
  const s = (performance.now() - started) / 1000;
  console.log(`replay from history: ${expected} candles on ${streams} stream(s) to one client in ${s.toFixed(2)} s = ${Math.round(expected / s).toLocaleString('en')} candles/s`);
}
await replay(1);
await replay(Math.min(100, STREAMS));
await relay.close();
