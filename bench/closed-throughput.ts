/**
 * Closed-candle throughput through the real pipeline (gap tracker + dedup LRU + closed FIFO with its
 * backpressure) and the real relay to N WebSocket clients living in a separate process.
 *
 *   node bench/closed-throughput.ts [--clients 1,10] [--streams 2000] [--candles 100]
 *
 * Prints candles/s per client count. A benchmark, not a test: figures depend on the machine.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import type { Candle } from '../src/core/candle.ts';
import { systemClock } from '../src/core/clock.ts';
import { StatusStream } from '../src/core/status.ts';
import { StreamRegistry } from '../src/core/streams.ts';
import { EnvSchema } from '../src/config/schema.ts';
import { Pipeline } from '../src/pipeline/pipeline.ts';
import { RelayServer } from '../src/relay/server.ts';
import { klineAt, klineEventJson } from '../src/venues/binance/simulator/klines.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

// ---- child: N relay clients, counting closed candles -----------------------------------------
if (process.argv[2] === '--child') {
  const url = process.argv[3] ?? '';
  const clients = Number(process.argv[4]);
  const expected = Number(process.argv[5]);
  const names = (process.argv[6] ?? '').split('/');
  let done = 0;
  for (let i = 0; i < clients; i++) {
    let got = -1; // the first message is the SUBSCRIBE reply
    // Thousands of names do not fit an upgrade URL (Node's 16 KB header limit): one SUBSCRIBE instead.
    const ws = new WebSocket(url);
    ws.on('open', () => {
      ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: names, id: 1 }));
    });
    ws.on('message', () => {
      got++;
      if (got === 0) process.send?.({ open: true });
      if (got === expected) {
        done++;
        if (done === clients) process.send?.({ done: true });
      }
    });
  }
} else {
  await main();
}

async function main(): Promise<void> {
  const streamsN = Number(arg('streams', '2000'));
  const perStream = Number(arg('candles', '50'));
  const clientCounts = arg('clients', '1,10').split(',').map(Number);
  const config = EnvSchema.parse({ CONNECTOR_RELAY_HOST: '127.0.0.1', CONNECTOR_RELAY_PORT: 0, CONNECTOR_RELAY_MAX_BUFFERED_BYTES: 512 * 1024 * 1024, CONNECTOR_RELAY_MAX_STREAMS_PER_CLIENT: 100_000 });
  const registry = new StreamRegistry();
  const refs = Array.from({ length: streamsN }, (_, i) => registry.register('binance', `s${i}usdt@kline_1m`, `S${i}USDT`, '1m'));
  // Pre-build every candle (the upstream parser is measured elsewhere): raw = Binance's own bytes.
  const t0 = 1_700_000_000_000 - (1_700_000_000_000 % 60_000);
  const candles: Candle[] = [];
  for (let n = 0; n < perStream; n++) {
    for (const ref of refs) {
      const k = klineAt(ref.name.slice(0, ref.name.indexOf('@')), '1m', t0 + n * 60_000);
      candles.push({
        stream: ref, openTime: k.t, closeTime: k.T, eventTime: k.T + 1, closed: true, open: k.o, high: k.h, low: k.l, close: k.c,
        volume: k.v, quoteVolume: k.q, takerBuyBaseVolume: k.V, takerBuyQuoteVolume: k.Q, trades: k.n, firstTradeId: k.f,
        lastTradeId: k.L, ignore: k.B, source: 'ws', raw: Buffer.from(klineEventJson(k, k.T + 1)), receivedAt: 0,
      });
    }
  }
  const rows: string[] = [];
  for (const clients of clientCounts) {
    const status = new StatusStream();
    const relay = new RelayServer({ config: config.relay, status, log: pino({ level: 'silent' }), resolve: (name) => registry.get('binance', name) });
    const { port } = await relay.listen();
    let unblock: (() => void) | undefined;
    const flow = { blocked: false };
    const pipeline = new Pipeline({
      config: config.pipeline,
      inline: [relay],
      sinks: [],
      status,
      clock: systemClock,
      recover: () => Promise.resolve([]),
      onBlocked: () => {
        flow.blocked = true;
      },
      onUnblocked: () => {
        flow.blocked = false;
        unblock?.();
      },
    });
    const child = fork(fileURLToPath(import.meta.url), ['--child', `ws://127.0.0.1:${port}/stream`, String(clients), String(candles.length), refs.map((r) => r.name).join('/')], {
      execArgv: [],
    });
    let opened = 0;
    const allOpen = new Promise<void>((resolve) => {
      child.on('message', (m: { open?: boolean }) => {
        if (m.open === true && ++opened === clients) resolve();
      });
    });
    const allDone = new Promise<void>((resolve) => {
      child.on('message', (m: { done?: boolean }) => {
        if (m.done === true) resolve();
      });
    });
    await allOpen;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    for (const c of candles) {
      pipeline.ingest({ ...c, receivedAt: performance.now() });
      if (flow.blocked) await new Promise<void>((r) => (unblock = r)); // the socket would be paused here
    }
    await allDone;
    const ms = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    const lat = pipeline.stats().latency;
    rows.push(
      `clients=${clients} streams=${streamsN} closed=${candles.length} ` +
        `rate=${Math.round(candles.length / (ms / 1000))}/s delivered=${Math.round((candles.length * clients) / (ms / 1000))} msgs/s ` +
        `cpu=${((cpu.user + cpu.system) / candles.length).toFixed(2)}µs/candle blocking_events=${pipeline.stats().blockingEvents} ` +
        `mean_queue_to_sink=${((lat.sumSeconds / lat.count) * 1000).toFixed(2)}ms rss=${Math.round(process.memoryUsage().rss / 2 ** 20)}MB`,
    );
    child.kill();
    await relay.close(1000);
  }
  for (const r of rows) console.log(r);
}
