/**
 * The JetStream sink's throughput with acks: closed candles/s into a local `nats-server -js` (file
 * storage, a fresh store), handed over as the sink's runner does (batches of 512, one batch at a time,
 * in open-time order per stream), for several stream counts: the sink keeps one publish in flight per
 * subject, so the concurrency is min(streams, CONNECTOR_NATS_MAX_INFLIGHT).
 *
 *   node bench/jetstream.ts [--streams 1,10,100,1000] [--candles 20000] [--inflight 256]
 *
 * Needs `nats-server` on PATH. A benchmark, not a test: figures depend on the machine.
 */
import type { Candle, StreamRef } from '../src/core/candle.ts';
import { StreamRegistry } from '../src/core/streams.ts';
import { JetStreamSink } from '../src/sinks/jetstream.ts';
import { NATS_SERVER_MISSING, NatsServer } from '../test/helpers/nats-server.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const BATCH = 512;
const T0 = 1_700_000_000_000;

function candle(stream: StreamRef, openTime: number): Candle {
  return {
    stream,
    openTime,
    closeTime: openTime + 59_999,
    eventTime: openTime + 60_000,
    closed: true,
    open: '42000.01000000',
    high: '42010.00000000',
    low: '41990.00000000',
    close: '42005.50000000',
    volume: '12.34500000',
    quoteVolume: '518000.00000000',
    takerBuyBaseVolume: '6.00000000',
    takerBuyQuoteVolume: '252000.00000000',
    trades: 321,
    firstTradeId: 1,
    lastTradeId: 321,
    ignore: '0',
    source: 'ws',
    raw: undefined,
    receivedAt: 0,
  };
}

async function scenario(broker: NatsServer, streamCount: number, total: number, inflight: number, run: number): Promise<number> {
  const registry = new StreamRegistry();
  const refs = Array.from({ length: streamCount }, (_, i) => registry.register('binance', `s${i}usdt@kline_1m`, `S${i}USDT`, '1m'));
  const perStream = Math.ceil(total / streamCount);
  // Interleaved as the pipeline delivers them: minute by minute, every stream's candle of that minute.
  const candles: Candle[] = [];
  for (let m = 0; m < perStream; m++) for (const r of refs) candles.push(candle(r, T0 + m * 60_000));
  const sink = new JetStreamSink({
    config: { url: broker.url, token: undefined, user: undefined, password: undefined, stream: `BENCH${run}`, subjectPrefix: `bench${run}`, maxAgeHours: 1, maxInflight: inflight },
  });
  await sink.deliver([]); // connect and create the stream outside the measured time
  const started = performance.now();
  for (let i = 0; i < candles.length; i += BATCH) await sink.deliver(candles.slice(i, i + BATCH));
  const seconds = (performance.now() - started) / 1000;
  const { published, duplicates } = sink.counters();
  await sink.close();
  if (published !== candles.length || duplicates !== 0) throw new Error(`expected ${candles.length} stored, got ${published} (+${duplicates} duplicates)`);
  return candles.length / seconds;
}

if (NATS_SERVER_MISSING !== undefined) {
  console.error(NATS_SERVER_MISSING);
  process.exit(2);
}
const streamCounts = arg('streams', '1,10,100,1000').split(',').map(Number);
const total = Number(arg('candles', '20000'));
const inflight = Number(arg('inflight', '256'));
const broker = await NatsServer.start();
try {
  console.log(`nats-server ${broker.url}, file storage; ${total} closed candles per scenario, batches of ${BATCH}, max in flight ${inflight}`);
  let run = 0;
  for (const n of streamCounts) {
    const rate = await scenario(broker, n, total, inflight, run++);
    console.log(`streams=${String(n).padStart(5)}  in flight<=${Math.min(n, inflight)}  ${Math.round(rate).toLocaleString('en-US')} closed candles/s (acked)`);
  }
} finally {
  await broker.dispose();
}
