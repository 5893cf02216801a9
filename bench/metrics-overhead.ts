/**
 * Metrics overhead, measured directly rather than as the difference of two noisy throughput runs:
 *   1. hot path: the only per-message metric work is LatencyRecorder.observeMs (plain array increments;
 *      every counter is read from component stats on scrape). Time it per call.
 *   2. scrape: CPU of one GET /metrics on the real daemon with 2000 streams (all its series, Node
 *      process metrics included), against the CPU the daemon spends per second on its stream load.
 *
 *   node --max-semi-space-size=2 bench/metrics-overhead.ts [--streams 2000] [--scrapes 40] [--warm-ms 8000] [--window-ms 4000] [--json]
 *
 * `--json`: one JSON line (MetricsOverhead) instead of text; `npm run bench` runs it that way for its target.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { LatencyRecorder } from '../src/core/latency.ts';
import { BinanceSimulator } from '../src/venues/binance/simulator/server.ts';
import { EnvSchema } from '../src/config/schema.ts';
import { startConnector } from '../src/app.ts';
import { argValue, round, sleep } from './lib.ts';

const arg = (name: string, fallback: string): string => argValue(process.argv, `--${name}`) ?? fallback;
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

// 1. per-message recording cost
const rec = new LatencyRecorder();
const N = 20_000_000;
let x = 0.01;
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  rec.observeMs(x);
  x = x > 30 ? 0.01 : x * 1.37;
}
const nsPerObserve = ((performance.now() - t0) * 1e6) / N;

// 2. scrape cost on the real daemon
const streams = Number(arg('streams', '2000'));
const scrapes = Number(arg('scrapes', '40'));
const sim = await BinanceSimulator.start();
const symbols = Array.from({ length: streams / 2 }, (_, i) => `m${i}usdt`).join(',');
const config = EnvSchema.parse({
  CONNECTOR_SYMBOLS: symbols,
  CONNECTOR_INTERVALS: '1m,5m',
  CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
  CONNECTOR_BINANCE_REST_URL: sim.restUrl,
  CONNECTOR_RELAY_HOST: '127.0.0.1',
  CONNECTOR_RELAY_PORT: 0,
  CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
  CONNECTOR_WSS_HEALTH_CHECK_PORT: 0,
  CONNECTOR_LOG_LEVEL: 'silent',
});
const connector = await startConnector(config, { log: pino({ level: 'silent' }) });
if (connector.httpAddress === undefined) throw new Error('metrics-overhead needs the ops server (CONNECTOR_WSS_HEALTH_CHECK_ENABLED)');
const url = `http://127.0.0.1:${connector.httpAddress.port}/metrics`;
await sleep(Number(arg('warm-ms', '8000'))); // every stream live, the load steady
let bytes = 0;
// Baseline: the whole process (daemon + in-process simulator) for the same wall time, no scrapes.
const window = Number(arg('window-ms', '4000'));
const b0 = process.cpuUsage();
await sleep(window);
const baseline = cpuMs(process.cpuUsage(b0));
const s0 = process.cpuUsage();
const w0 = performance.now();
for (let i = 0; i < scrapes; i++) bytes = (await (await fetch(url)).text()).length;
const scrapeWall = performance.now() - w0;
if (scrapeWall < window) await sleep(window - scrapeWall);
const withScrapes = cpuMs(process.cpuUsage(s0));
const perScrapeMs = Math.max(0, withScrapes - baseline) / scrapes;
const processed = connector.pipeline.stats().processed;
await connector.shutdown('bench');
await sim.close();

// The full path's CPU per message: `--full-us-per-msg`, else the last `npm run bench` (bench/results.json, full x1).
function lastFullPath(): string {
  try {
    const r = JSON.parse(readFileSync(new URL('./results.json', import.meta.url), 'utf8')) as { scenarios?: Record<string, { cpuUsPerMsg?: number }> };
    const v = r.scenarios?.['full x1']?.cpuUsPerMsg;
    if (typeof v === 'number') return v.toFixed(2);
  } catch {
    // no results file yet: the figure of record below
  }
  return '1.69';
}
const fullPathUsPerMsg = Number(arg('full-us-per-msg', lastFullPath()));
/** What `--json` prints (bench/run.ts reads it). */
export interface MetricsOverhead {
  type: 'metrics-overhead';
  streams: number;
  scrapes: number;
  scrapeBytes: number;
  /** CPU ms of one GET /metrics. */
  perScrapeMs: number;
  /** One scrape a second, in % of one core. */
  scrapeEvery1sPct: number;
  /** LatencyRecorder.observeMs, the only per-message metric work, ns per call. */
  nsPerObserve: number;
  /** The same in % of the full path's CPU per message. */
  observePctOfFullPath: number;
  fullPathUsPerMsg: number;
}
const observePct = (nsPerObserve / (fullPathUsPerMsg * 1000)) * 100;
const scrapeEvery1sPct = (perScrapeMs / 1000) * 100;
const out: MetricsOverhead = {
  type: 'metrics-overhead',
  streams,
  scrapes,
  scrapeBytes: bytes,
  perScrapeMs: round(perScrapeMs, 3),
  scrapeEvery1sPct: round(scrapeEvery1sPct, 3),
  nsPerObserve: round(nsPerObserve, 1),
  observePctOfFullPath: round(observePct, 3),
  fullPathUsPerMsg,
};
if (process.argv.includes('--json')) console.log(JSON.stringify(out));
else console.log(
  [
    `latency recording: ${nsPerObserve.toFixed(1)} ns per message = ${observePct.toFixed(2)} % of the full path's ${fullPathUsPerMsg} µs/msg`,
    `scrape: ${perScrapeMs.toFixed(2)} ms CPU per GET /metrics (${(bytes / 1024).toFixed(0)} KiB, ${streams} streams); ` +
      `every 15 s = ${((perScrapeMs / 15_000) * 100).toFixed(3)} % of one core, every 1 s = ${scrapeEvery1sPct.toFixed(2)} %`,
    `(baseline process CPU ${((baseline / window) * 100).toFixed(1)} % of a core; ${processed} candles processed)`,
  ].join('\n'),
);
