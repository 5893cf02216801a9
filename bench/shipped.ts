/**
 * The daemon as users run it, for the memory figures (connector-contract.md §8): compiled
 * (`npm run build` → dist/daemon/, one bundle), started through bin/kline-connector, the launcher both `npm start` and
 * the image's CMD run, so it has exactly the shipped runtime flags. Nothing of the bench is loaded
 * into it: configuration comes from the environment, figures from its own /metrics (RSS, heap and
 * external from prom-client's default metrics, the relay history from connector_relay_history_*).
 *
 *   node bench/shipped.ts [--streams 2000] [--history 0] [--seconds 60]   one measurement, printed
 *
 * No forced GC (the shipped form has no --expose-gc): the figures are what a scrape of production
 * would show after the same minute.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { BinanceSimulator } from '../src/venues/binance/simulator/server.ts';
import type { ConsumerSample } from './consumer.ts';
import { Forked, MB, argValue, benchSymbols, here, median, round, sleep } from './lib.ts';

const ROOT = here('..');
const LAUNCHER = 'bin/kline-connector';

/** Bundle src/ → dist/daemon/ as `npm run build` does (the bench measures the shipped daemon). */
export async function buildDist(): Promise<void> {
  const child = spawn(process.execPath, [here('../bin/build.ts')], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`node bin/build.ts exited ${code}`);
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => { resolve(); }));
  return port;
}

/** The samples of /metrics this bench reads (unlabelled series only). */
export interface ShippedMetrics {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  historyCandles: number;
  historyBytes: number;
  relaySent: number;
}

function sampleOf(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text);
  if (m === null) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

/** One `bin/kline-connector` process with its relay and ops ports on loopback. */
export class ShippedDaemon {
  readonly child: ChildProcess;
  readonly relayPort: number;
  readonly httpPort: number;
  readonly #exited: Promise<number | null>;

  private constructor(child: ChildProcess, relayPort: number, httpPort: number) {
    this.child = child;
    this.relayPort = relayPort;
    this.httpPort = httpPort;
    this.#exited = new Promise((resolve) => child.once('exit', resolve));
  }

  /**
   * Start with `env` (CONNECTOR_*) on top of this process's environment; resolves once /health answers.
   * `nodeOptions`: NODE_OPTIONS for experiments beside the launcher's flags (none in the bench's figures).
   */
  static async start(env: Record<string, string | number>, nodeOptions?: string): Promise<ShippedDaemon> {
    const [relayPort, httpPort] = [await freePort(), await freePort()];
    const vars: NodeJS.ProcessEnv = { ...process.env };
    // The bench's own NODE_OPTIONS (vitest, a debugger) must not reach the daemon under measurement.
    delete vars.NODE_OPTIONS;
    if (nodeOptions !== undefined) vars.NODE_OPTIONS = nodeOptions;
    const child = spawn('sh', [LAUNCHER], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...vars,
        CONNECTOR_RELAY_HOST: '127.0.0.1',
        CONNECTOR_RELAY_PORT: String(relayPort),
        CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
        CONNECTOR_WSS_HEALTH_CHECK_PORT: String(httpPort),
        CONNECTOR_LOG_LEVEL: 'warn',
        ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
      },
    });
    const d = new ShippedDaemon(child, relayPort, httpPort);
    const end = performance.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${LAUNCHER} exited ${child.exitCode} during start-up`);
      try {
        const r = await fetch(`http://127.0.0.1:${httpPort}/health`);
        await r.text();
        if (r.ok) return d;
      } catch {
        // Not listening yet: poll again below.
      }
      if (performance.now() > end) {
        await d.stop();
        throw new Error(`${LAUNCHER} did not answer /health within 30 s`);
      }
      await sleep(100);
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  async metrics(): Promise<ShippedMetrics> {
    const r = await fetch(`http://127.0.0.1:${this.httpPort}/metrics`);
    const text = await r.text();
    return {
      rssBytes: sampleOf(text, 'process_resident_memory_bytes'),
      heapUsedBytes: sampleOf(text, 'nodejs_heap_size_used_bytes'),
      heapTotalBytes: sampleOf(text, 'nodejs_heap_size_total_bytes'),
      externalBytes: sampleOf(text, 'nodejs_external_memory_bytes'),
      historyCandles: sampleOf(text, 'connector_relay_history_candles'),
      historyBytes: sampleOf(text, 'connector_relay_history_bytes'),
      relaySent: sampleOf(text, 'connector_relay_messages_sent_total'),
    };
  }

  /** SIGTERM (graceful drain), SIGKILL by its pid after 15 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

export interface ShippedMemory {
  streams: number;
  /** CONNECTOR_RELAY_HISTORY_CANDLES of the run (0 = no relay history). */
  historyPerStream: number;
  /** Seconds of traffic to the relay client before the figures were read. */
  seconds: number;
  rssMB: number;
  peakRssMB: number;
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
  historyCandles: number;
  historyMB: number;
  relaySentPerSec: number;
  /** What the relay client received (it must be the daemon's whole output, or the figure is not the budget's). */
  clientMsgsPerSec: number;
  connections: number;
}

/**
 * `streams` (half the symbols on 1s, half on 1m) from the simulator into one shipped daemon with one
 * relay client subscribed to all of them; after `seconds` of traffic, the median of three scrapes
 * one second apart (the peak of a scrape every 5 s beside it).
 */
export async function measureShipped(sim: BinanceSimulator, opts: { streams: number; history: number; seconds: number }): Promise<ShippedMemory> {
  const symbols = benchSymbols(opts.streams / 2);
  const intervals = ['1s', '1m'];
  const names = symbols.flatMap((s) => intervals.map((i) => `${s}@kline_${i}`));
  const perConn = 200;
  const opened = sim.counters.connectionsOpened;
  const d = await ShippedDaemon.start({
    CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
    CONNECTOR_BINANCE_REST_URL: sim.restUrl,
    CONNECTOR_SYMBOLS: symbols.join(','),
    CONNECTOR_INTERVALS: intervals.join(','),
    CONNECTOR_MAX_STREAMS_PER_CONNECTION: perConn,
    CONNECTOR_MAX_CONNECTIONS: Math.max(10, Math.ceil(names.length / perConn) + 2),
    CONNECTOR_RELAY_MAX_STREAMS_PER_CLIENT: Math.max(1024, names.length),
    // One SUBSCRIBE naming every stream (~50 KB for 2000).
    CONNECTOR_RELAY_MAX_FRAME_BYTES: 256 * 1024,
    CONNECTOR_RELAY_HISTORY_CANDLES: opts.history,
  });
  let c: Forked | undefined;
  try {
    c = await Forked.start('./consumer.ts', { mode: 'relay', url: `ws://127.0.0.1:${d.relayPort}`, streams: names, clients: 1 });
    const t0 = performance.now();
    const sent0 = (await d.metrics()).relaySent;
    let peak = 0;
    const lastMs = opts.seconds * 1000 - 2000;
    while (performance.now() - t0 < lastMs) {
      await sleep(Math.min(5000, Math.max(0, lastMs - (performance.now() - t0))));
      peak = Math.max(peak, (await d.metrics()).rssBytes);
    }
    const samples: ShippedMetrics[] = [];
    for (let i = 0; i < 3; i++) {
      if (i > 0) await sleep(1000);
      samples.push(await d.metrics());
    }
    const wallS = (performance.now() - t0) / 1000;
    const client = await c.request<ConsumerSample>({ type: 'sample' });
    const med = (k: keyof ShippedMetrics): number => median(samples.map((s) => s[k]));
    const last = samples.at(-1)!;
    peak = Math.max(peak, ...samples.map((s) => s.rssBytes));
    return {
      streams: names.length,
      historyPerStream: opts.history,
      seconds: round(wallS, 1),
      rssMB: round(med('rssBytes') / MB, 1),
      peakRssMB: round(peak / MB, 1),
      heapUsedMB: round(med('heapUsedBytes') / MB, 1),
      heapTotalMB: round(med('heapTotalBytes') / MB, 1),
      externalMB: round(med('externalBytes') / MB, 1),
      historyCandles: last.historyCandles,
      historyMB: round(last.historyBytes / MB, 2),
      relaySentPerSec: round((last.relaySent - sent0) / wallS, 0),
      clientMsgsPerSec: round((client.messages / client.wallMs) * 1000, 0),
      connections: sim.counters.connectionsOpened - opened,
    };
  } finally {
    await c?.stop();
    await d.stop();
  }
}

if (import.meta.filename === process.argv[1]) {
  const argv = process.argv.slice(2);
  await buildDist();
  const sim = await BinanceSimulator.start({ host: '127.0.0.1', port: 0 });
  try {
    const m = await measureShipped(sim, {
      streams: Number(argValue(argv, '--streams') ?? 2000),
      history: Number(argValue(argv, '--history') ?? 0),
      seconds: Number(argValue(argv, '--seconds') ?? 60),
    });
    console.log(JSON.stringify(m, null, 2));
  } finally {
    await sim.close();
  }
}
