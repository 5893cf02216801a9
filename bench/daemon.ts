/**
 * The daemon under measurement, in its own process (forked by bench/soak.ts and bench/run.ts with
 * `--expose-gc`), so its RSS, heap and CPU are its own and not the load generator's.
 *
 *   argv[2] = JSON { env: {CONNECTOR_*: …}, latency?: boolean }
 *
 * It runs the real graph (`startConnector`) plus one measuring sink after the relay: the sink sees
 * each batch once the relay has written it to every client socket, so `performance.now() -
 * candle.receivedAt` there is upstream frame arrival → relay send. IPC:
 *   child → parent  { type: 'ready', relayPort, httpPort }
 *   parent → child  { type: 'sample', gc?: boolean }  → { type: 'sample', … } (memory after an optional forced GC)
 *   parent → child  { type: 'reset' }                  → { type: 'reset' } (zeroes counters, histogram, CPU baseline)
 *   parent → child  { type: 'stop' }                   → graceful shutdown, then exit 0
 */
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { pino } from 'pino';
import type { Candle, CandleSink } from '../src/core/candle.ts';
import { EnvSchema } from '../src/config/schema.ts';
import { startConnector } from '../src/app.ts';

export interface DaemonArgs {
  env: Record<string, unknown>;
  latency?: boolean;
}

export interface LatencySummary {
  count: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

export interface DaemonSample {
  type: 'sample';
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** Buffers and ArrayBuffers (part of external): where socket and frame bytes live. */
  arrayBuffersBytes: number;
  /** CPU µs (user + system) since the last reset. */
  cpuUs: number;
  /** Wall ms since the last reset. */
  wallMs: number;
  /** Upstream frames read by the pool since the last reset. */
  upstreamMessages: number;
  parseErrors: number;
  deliveredClosed: number;
  deliveredOpen: number;
  /** Relay messages written (one per client per event). */
  relaySent: number;
  relayClients: number;
  slowConsumers: number;
  /** Relay resume history: closed candles held and their payload bytes (all streams). */
  historyCandles: number;
  historyBytes: number;
  /** Stream replays (`since`) in progress, and candles replayed since start (of them from REST). */
  replays: number;
  replayedCandles: number;
  replayedFromRest: number;
  duplicates: number;
  openSkipped: number;
  blockingEvents: number;
  backfills: number;
  candlesRecovered: number;
  latency: LatencySummary;
}

export type DaemonMessage = { type: 'ready'; relayPort: number; httpPort: number } | DaemonSample | { type: 'reset' };

const args = JSON.parse(process.argv[2] ?? '{}') as DaemonArgs;
const gc = (globalThis as { gc?: () => void }).gc;

const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
let deliveredClosed = 0;
let deliveredOpen = 0;
let cpuBase = process.cpuUsage();
let wallBase = performance.now();
let relayBase = 0;
let upstreamBase = 0;

// Runs after the relay in the same drain step: the relay has written this batch to every socket.
const measuring: CandleSink = {
  name: 'bench-measure',
  deliver(batch: readonly Candle[]): void {
    const now = performance.now();
    for (let i = 0; i < batch.length; i++) {
      const c = batch[i]!;
      if (c.closed) deliveredClosed++;
      else deliveredOpen++;
      if (args.latency === true && c.source === 'ws') histogram.recordValue(Math.max(1, Math.round((now - c.receivedAt) * 1000)));
    }
  },
};

const config = EnvSchema.parse({
  CONNECTOR_RELAY_HOST: '127.0.0.1',
  CONNECTOR_RELAY_PORT: 0,
  CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
  CONNECTOR_WSS_HEALTH_CHECK_PORT: 0,
  CONNECTOR_LOG_LEVEL: 'silent',
  ...args.env,
});
const connector = await startConnector(config, {
  log: pino({ level: config.logLevel }),
  sinks: [measuring],
});

function send(msg: DaemonMessage): void {
  process.send?.(msg);
}

function sample(forceGc: boolean): DaemonSample {
  if (forceGc && gc !== undefined) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  const cpu = process.cpuUsage(cpuBase);
  const p = connector.pipeline.stats();
  const r = connector.relay.stats();
  const g = connector.pipeline.gapStats;
  const u = connector.pool.stats();
  return {
    type: 'sample',
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    heapTotalBytes: m.heapTotal,
    externalBytes: m.external,
    arrayBuffersBytes: m.arrayBuffers,
    cpuUs: cpu.user + cpu.system,
    wallMs: performance.now() - wallBase,
    upstreamMessages: u.messages - upstreamBase,
    parseErrors: u.parseErrors,
    deliveredClosed,
    deliveredOpen,
    relaySent: r.messagesSent - relayBase,
    relayClients: r.clients,
    slowConsumers: r.slowConsumers,
    historyCandles: r.historyCandles,
    historyBytes: r.historyBytes,
    replays: r.replays,
    replayedCandles: r.replayedCandles,
    replayedFromRest: r.replayedFromRest,
    duplicates: p.duplicates,
    openSkipped: p.openSkipped,
    blockingEvents: p.blockingEvents,
    backfills: g.backfills,
    candlesRecovered: g.candlesRecovered,
    latency: {
      count: histogram.totalCount,
      p50Us: histogram.getValueAtPercentile(50),
      p99Us: histogram.getValueAtPercentile(99),
      p999Us: histogram.getValueAtPercentile(99.9),
      maxUs: histogram.maxValue,
    },
  };
}

process.on('message', (raw: unknown) => {
  const msg = raw as { type: string; gc?: boolean };
  if (msg.type === 'sample') send(sample(msg.gc === true));
  else if (msg.type === 'reset') {
    histogram.reset();
    deliveredClosed = 0;
    deliveredOpen = 0;
    cpuBase = process.cpuUsage();
    wallBase = performance.now();
    relayBase = connector.relay.stats().messagesSent;
    upstreamBase = connector.pool.stats().messages;
    send({ type: 'reset' });
  } else if (msg.type === 'stop') {
    void connector.shutdown('bench done').then(() => process.exit(0));
  }
});
// The parent died without saying stop: do not linger.
process.on('disconnect', () => {
  void connector.shutdown('parent gone').then(() => process.exit(0));
});

if (connector.httpAddress === undefined) throw new Error('the bench daemon needs the ops server (CONNECTOR_WSS_HEALTH_CHECK_ENABLED)');
send({ type: 'ready', relayPort: connector.relayAddress.port, httpPort: connector.httpAddress.port });
