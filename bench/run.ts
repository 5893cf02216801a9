/**
 * `npm run bench [-- --quick] [-- --rounds N] [-- --out file] [-- --profile]`: the daemon's full path against a floor,
 * on loopback, in one run, interleaved, as ratios (connector-contract.md §8). Not a test: numbers
 * depend on the machine; the ratios to the floor measured in the same run are what to compare.
 *
 * Process layout (each its own `node` process, so process.cpuUsage() of the consumer is its own):
 *   run.ts (this)      orchestrates over IPC and sleeps while measuring; hosts the BinanceSimulator
 *                      for the memory scenarios; scrapes /metrics in the metrics-overhead scenario
 *   bench/flood.ts     upstream: Binance-like /stream endpoint, pre-templated kline frames, as fast
 *                      as the socket drains or at a fixed rate (one process for the whole run)
 *   bench/consumer.ts  floor (bare ws + JSON.parse) | binance npm WebsocketClient | N relay clients
 *   bench/daemon.ts    the real daemon (startConnector) + a measuring sink after the relay
 * Scenario by scenario only one consumer (and, for the daemon, its relay-client process) runs, so
 * they never share the flood. With 2 cores the flood, the daemon and the relay clients compete for
 * CPU: the daemon scenarios pay for it, the floor does not (it has no relay clients).
 *
 * Per round, in this order: floor, full×1, full×1+scrape, full×10, floor, full×100, binance npm,
 * full×100 @10k/s, full×10 @10k/s, full×1 @10k/s. Medians over rounds. Then memory on the shipped form (bench/shipped.ts:
 * the bundle, dist/daemon/, through bin/kline-connector against the simulator, 1 relay client, after a minute): 200 and 2000
 * streams without relay history, then 2000 with the default history, counted apart.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { BinanceSimulator } from '../src/venues/binance/simulator/server.ts';
import type { DaemonArgs, DaemonSample } from './daemon.ts';
import type { ConsumerArgs, ConsumerSample } from './consumer.ts';
import type { FloodMessage } from './flood.ts';
import { DaemonProcess, Forked, MB, argValue, benchSymbols, here, median, round, sleep } from './lib.ts';
import { buildDist, measureShipped, type ShippedMemory } from './shipped.ts';
import { topOfProfile } from './profile-top.ts';
import { HISTORY_BYTES_PER_CANDLE } from '../src/relay/history.ts';
import type { MetricsOverhead } from './metrics-overhead.ts';

/** CONNECTOR_RELAY_HISTORY_CANDLES's default (config/schema.ts). */
const DEFAULT_HISTORY = 1440;

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const profile = argv.includes('--profile');
/**
 * Experiments only (the figures of record come from a plain run): `--only 'full x1,full x100 @10k/s'`
 * runs just those scenarios beside the floor and skips memory; `--daemon-flags '--max-semi-space-size=8'`
 * adds node flags to the daemon after the launcher's (a later V8 flag wins).
 */
const only = argValue(argv, '--only')?.split(',');
const daemonFlags = argValue(argv, '--daemon-flags')?.split(' ').filter((f) => f.length > 0) ?? [];
const P = quick
  ? { rounds: 1, warmMs: 300, measureMs: 700, fixedMs: 800, memSeconds: 4 }
  : { rounds: 3, warmMs: 2000, measureMs: 5000, fixedMs: 6000, memSeconds: 60 };
const rounds = Number(argValue(argv, '--rounds') ?? P.rounds);
const outFile = argValue(argv, '--out') ?? here('./results.json');
const STREAM_COUNT = 500;
const FIXED_RATE = 10_000;
const streams = benchSymbols(STREAM_COUNT).map((s) => `${s}@kline_1m`);

type Flood = Forked<{ type: 'ready'; wsUrl: string; restUrl: string }>;
type FloodStats = Extract<FloodMessage, { type: 'stats' }>;

/** One measured run of one scenario. */
interface Run {
  msgsPerSec: number;
  cpuUsPerMsg: number;
  rssMB: number;
  heapMB: number;
  floodCpuPct: number;
  p50Us?: number;
  p99Us?: number;
  p999Us?: number;
  maxUs?: number;
  deliveredPerSec?: number;
  relaySentPerSec?: number;
  clientMsgsPerSec?: number;
  clientsOpen?: number;
  clientCpuPct?: number;
  scrapes?: number;
}

async function floodStats(flood: Flood): Promise<FloodStats> {
  return flood.request<FloodStats>({ type: 'stats' });
}

async function setRate(flood: Flood, rate: number): Promise<void> {
  await flood.request({ type: 'rate', rate });
}

function startConsumer(args: ConsumerArgs): Promise<Forked> {
  return Forked.start('./consumer.ts', args);
}

async function measureConsumer(flood: Flood, args: ConsumerArgs): Promise<Run> {
  await setRate(flood, 0);
  const c = await startConsumer(args);
  try {
    await sleep(P.warmMs);
    await c.request({ type: 'reset' });
    const f0 = await floodStats(flood);
    await sleep(P.measureMs);
    const s = await c.request<ConsumerSample>({ type: 'sample' });
    const f1 = await floodStats(flood);
    return {
      msgsPerSec: (s.messages / s.wallMs) * 1000,
      cpuUsPerMsg: s.cpuUs / Math.max(1, s.messages),
      rssMB: s.rssBytes / MB,
      heapMB: s.heapUsedBytes / MB,
      floodCpuPct: ((f1.cpuUs - f0.cpuUs) / 1000 / s.wallMs) * 100,
    };
  } finally {
    await c.stop();
  }
}

function daemonEnv(upstreamWs: string, restUrl: string, symbols: readonly string[], intervals: readonly string[], perConn: number): Record<string, unknown> {
  const total = symbols.length * intervals.length;
  return {
    CONNECTOR_BINANCE_WS_URL: upstreamWs,
    CONNECTOR_BINANCE_REST_URL: restUrl,
    CONNECTOR_SYMBOLS: symbols.join(','),
    CONNECTOR_INTERVALS: intervals.join(','),
    CONNECTOR_MAX_STREAMS_PER_CONNECTION: perConn,
    CONNECTOR_MAX_CONNECTIONS: Math.max(10, Math.ceil(total / perConn) + 2),
    CONNECTOR_RELAY_MAX_STREAMS_PER_CLIENT: Math.max(1024, total),
    CONNECTOR_RELAY_MAX_FRAME_BYTES: 256 * 1024,
    CONNECTOR_RELAY_MAX_CLIENTS: 1000,
    // Every bench client comes from 127.0.0.1: the per-address default (50) would turn half of 100 away.
    CONNECTOR_RELAY_MAX_CLIENTS_PER_IP: 1000,
  };
}

async function measureDaemon(flood: Flood, clients: number, opts: { rate?: number; scrape?: boolean; cpuProf?: string } = {}): Promise<Run> {
  await setRate(flood, opts.rate ?? 0);
  const args: DaemonArgs = {
    env: daemonEnv(flood.ready.wsUrl, flood.ready.restUrl, streams.map((s) => s.split('@')[0]!), ['1m'], 1024),
    latency: true,
  };
  const d = await DaemonProcess.start(args, [...daemonFlags, ...(opts.cpuProf === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${here('.')}`, `--cpu-prof-name=${opts.cpuProf}`])]);
  let c: Forked | undefined;
  let scrapeTimer: NodeJS.Timeout | undefined;
  try {
    if (clients > 0) c = await startConsumer({ mode: 'relay', url: `ws://127.0.0.1:${d.relayPort}`, streams, clients });
    await sleep(P.warmMs);
    await d.reset();
    await c?.request({ type: 'reset' });
    let scrapes = 0;
    if (opts.scrape === true) {
      const url = `http://127.0.0.1:${d.httpPort}/metrics`;
      scrapeTimer = setInterval(() => {
        void fetch(url)
          .then(async (r) => {
            await r.text();
            scrapes++;
          })
          .catch(() => undefined);
      }, 1000);
    }
    const f0 = await floodStats(flood);
    const ms = opts.rate === undefined ? P.measureMs : P.fixedMs;
    await sleep(ms);
    const s: DaemonSample = await d.sample(false);
    const cs = c === undefined ? undefined : await c.request<ConsumerSample>({ type: 'sample' });
    const f1 = await floodStats(flood);
    if (scrapeTimer !== undefined) clearInterval(scrapeTimer);
    const perSec = (n: number): number => (n / s.wallMs) * 1000;
    return {
      msgsPerSec: perSec(s.upstreamMessages),
      cpuUsPerMsg: s.cpuUs / Math.max(1, s.upstreamMessages),
      rssMB: s.rssBytes / MB,
      heapMB: s.heapUsedBytes / MB,
      floodCpuPct: ((f1.cpuUs - f0.cpuUs) / 1000 / s.wallMs) * 100,
      p50Us: s.latency.p50Us,
      p99Us: s.latency.p99Us,
      p999Us: s.latency.p999Us,
      maxUs: s.latency.maxUs,
      deliveredPerSec: perSec(s.deliveredClosed + s.deliveredOpen),
      relaySentPerSec: perSec(s.relaySent),
      ...(cs === undefined
        ? {}
        : { clientMsgsPerSec: (cs.messages / cs.wallMs) * 1000, clientsOpen: cs.open, clientCpuPct: (cs.cpuUs / 1000 / cs.wallMs) * 100 }),
      ...(opts.scrape === true ? { scrapes } : {}),
    };
  } finally {
    if (scrapeTimer !== undefined) clearInterval(scrapeTimer);
    await c?.stop();
    await d.stop();
  }
}

/** A scenario's median over its runs, with ratios to the floor of the same run. */
type Summary = Omit<Run, 'scrapes'> & {
  runs: number;
  ratioMsgsPerSec: number;
  ratioCpuUsPerMsg: number;
  ratioRss: number;
  ratioHeap: number;
};

function summarize(runs: readonly Run[], floor: Omit<Summary, 'runs'> | undefined): Summary {
  const med = (k: keyof Run): number | undefined => {
    const vs = runs.map((r) => r[k]).filter((v): v is number => typeof v === 'number');
    return vs.length === 0 ? undefined : median(vs);
  };
  const m = (k: keyof Run): number => med(k) ?? NaN;
  const out: Summary = {
    runs: runs.length,
    msgsPerSec: round(m('msgsPerSec'), 0),
    cpuUsPerMsg: round(m('cpuUsPerMsg'), 3),
    rssMB: round(m('rssMB'), 1),
    heapMB: round(m('heapMB'), 1),
    floodCpuPct: round(m('floodCpuPct'), 0),
    ratioMsgsPerSec: floor === undefined ? 1 : round(m('msgsPerSec') / floor.msgsPerSec, 3),
    ratioCpuUsPerMsg: floor === undefined ? 1 : round(m('cpuUsPerMsg') / floor.cpuUsPerMsg, 3),
    ratioRss: floor === undefined ? 1 : round(m('rssMB') / floor.rssMB, 3),
    ratioHeap: floor === undefined ? 1 : round(m('heapMB') / floor.heapMB, 3),
  };
  for (const k of ['p50Us', 'p99Us', 'p999Us', 'maxUs', 'deliveredPerSec', 'relaySentPerSec', 'clientMsgsPerSec', 'clientsOpen', 'clientCpuPct'] as const) {
    const v = med(k);
    if (v !== undefined) out[k] = round(v, k === 'clientsOpen' ? 1 : 0);
  }
  return out;
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  // The machine is shared (2 cores): how busy it was is part of every figure below.
  const loadAtStart = os.loadavg().map((v) => round(v, 2));
  const t0 = performance.now();
  const flood = await Forked.start<{ type: 'ready'; wsUrl: string; restUrl: string }>('./flood.ts', undefined);
  const runs = new Map<string, Run[]>();
  const want = (name: string): boolean => only === undefined || name === 'floor' || only.includes(name);
  const add = (name: string, r: Run): void => {
    (runs.get(name) ?? runs.set(name, []).get(name)!).push(r);
    const lat = r.p99Us === undefined ? '' : `  p50/p99/p999=${r.p50Us}/${r.p99Us}/${r.p999Us} µs`;
    console.log(`  ${name.padEnd(22)} ${r.msgsPerSec.toFixed(0).padStart(8)} msg/s  ${r.cpuUsPerMsg.toFixed(2).padStart(6)} µs CPU/msg  rss=${r.rssMB.toFixed(0)} MB${lat}`);
  };
  const floorArgs: ConsumerArgs = { mode: 'floor', url: flood.ready.wsUrl, streams };
  if (profile) {
    // `--profile`: the full path to one client at flood rate and the 100-client fan-out at 10k/s under
    // `node --cpu-prof`, each profile summarized (bench/profile-top.ts); no results file.
    try {
      for (const [name, clients, rate] of [['full-x1', 1, undefined], ['full-x1-10k', 1, FIXED_RATE], ['full-x100-10k', 100, FIXED_RATE]] as const) {
        const file = `${name}.cpuprofile`;
        const r = await measureDaemon(flood, clients, { cpuProf: file, ...(rate === undefined ? {} : { rate }) });
        console.log(`\n${name}: ${r.msgsPerSec.toFixed(0)} msg/s, ${r.cpuUsPerMsg.toFixed(2)} µs CPU/msg, p99 ${r.p99Us} µs (under the profiler)`);
        console.log(topOfProfile(here(`./${file}`), 30));
      }
    } finally {
      await flood.stop();
    }
    return;
  }
  try {
    for (let round_ = 1; round_ <= rounds; round_++) {
      console.log(`round ${round_}/${rounds}`);
      add('floor', await measureConsumer(flood, floorArgs));
      if (want('full x1')) add('full x1', await measureDaemon(flood, 1));
      if (want('full x1 + scrape 1s')) add('full x1 + scrape 1s', await measureDaemon(flood, 1, { scrape: true }));
      if (want('full x10')) add('full x10', await measureDaemon(flood, 10));
      // A second floor mid-round keeps the comparison interleaved (skipped in --quick to save time).
      if (!quick) add('floor', await measureConsumer(flood, floorArgs));
      if (want('full x100')) add('full x100', await measureDaemon(flood, 100));
      if (want('binance npm')) add('binance npm', await measureConsumer(flood, { mode: 'binance', url: flood.ready.wsUrl, streams }));
      if (want('full x100 @10k/s')) add('full x100 @10k/s', await measureDaemon(flood, 100, { rate: FIXED_RATE }));
      if (want('full x10 @10k/s')) add('full x10 @10k/s', await measureDaemon(flood, 10, { rate: FIXED_RATE }));
      if (want('full x1 @10k/s')) add('full x1 @10k/s', await measureDaemon(flood, 1, { rate: FIXED_RATE }));
    }
    await setRate(flood, 0);
  } finally {
    await flood.stop();
  }
  if (only !== undefined) {
    for (const [name, rs] of runs) {
      const x = summarize(rs, name === 'floor' ? undefined : summarize(runs.get('floor') ?? [], undefined));
      console.log(
        `${name}: ${x.msgsPerSec} msg/s (×${x.ratioMsgsPerSec} floor), ${x.cpuUsPerMsg} µs CPU/msg, p50/p99 ${x.p50Us ?? '-'}/${x.p99Us ?? '-'} µs, clients CPU ${x.clientCpuPct ?? '-'} %, flood CPU ${x.floodCpuPct} %`,
      );
    }
    return;
  }

  // Memory on the shipped form: compiled, through bin/kline-connector (what `npm start` and the image
  // run), after a full minute of traffic to one relay client. Without relay history first (the
  // budget), then with the default history, whose cost is stated per candle beside it.
  await buildDist();
  const sim = await BinanceSimulator.start({ host: '127.0.0.1', port: 0 });
  const memory: ShippedMemory[] = [];
  try {
    for (const [n, history] of [[200, 0], [2000, 0], [2000, DEFAULT_HISTORY]] as const) {
      const m = await measureShipped(sim, { streams: n, history, seconds: P.memSeconds });
      console.log(
        `  memory ${String(n).padStart(5)} streams, history ${String(history).padStart(4)}: rss=${m.rssMB} MB heap=${m.heapUsedMB} MB external=${m.externalMB} MB ` +
          `history=${m.historyCandles} candles ${m.historyMB} MB, relay ${m.relaySentPerSec}/s (shipped form, ${m.seconds} s)`,
      );
      memory.push(m);
    }
  } finally {
    await sim.close();
  }
  const mem200 = memory[0]!;
  const mem2000 = memory[1]!;
  const memHist = memory[2]!;
  const addedStreams = mem2000.streams - mem200.streams;
  const historyCost = {
    candlesHeld: memHist.historyCandles,
    payloadMB: memHist.historyMB,
    rssMB: round(memHist.rssMB - mem2000.rssMB, 1),
    rssBytesPerCandle: memHist.historyCandles === 0 ? NaN : round(((memHist.rssMB - mem2000.rssMB) * MB) / memHist.historyCandles, 0),
    payloadBytesPerCandle: memHist.historyCandles === 0 ? NaN : round((memHist.historyMB * MB) / memHist.historyCandles, 0),
    /** What one stream's full history (the default 1440 candles) costs at the measured RSS per candle. */
    perStreamFullMB: memHist.historyCandles === 0 ? NaN : round((((memHist.rssMB - mem2000.rssMB) * MB) / memHist.historyCandles) * DEFAULT_HISTORY / MB, 3),
    /** The start-up estimate's figure (relay/history.ts), for comparison. */
    estimateBytesPerCandle: HISTORY_BYTES_PER_CANDLE,
  };
  const perStream = {
    rssKB: round(((mem2000.rssMB - mem200.rssMB) * 1024) / addedStreams, 2),
    heapKB: round(((mem2000.heapUsedMB - mem200.heapUsedMB) * 1024) / addedStreams, 2),
  };

  const floor = summarize(runs.get('floor') ?? [], undefined);
  const scenarios: Record<string, Summary> = {};
  for (const [name, rs] of runs) scenarios[name] = name === 'floor' ? floor : summarize(rs, floor);
  const s = (name: string): Summary => scenarios[name]!;
  const overheadCpu = s('full x1 + scrape 1s').cpuUsPerMsg / s('full x1').cpuUsPerMsg - 1;
  const overheadRate = 1 - s('full x1 + scrape 1s').msgsPerSec / s('full x1').msgsPerSec;
  const direct = await metricsOverheadDirect(s('full x1').cpuUsPerMsg);
  const directPct = Math.max(direct.scrapeEvery1sPct, direct.observePctOfFullPath);
  const targets = [
    // CPU per message beside it: the msg/s ratio also depends on what else holds the two cores.
    {
      name: `full path to 1 client, msgs/s vs floor (CPU ${s('full x1').cpuUsPerMsg} µs/msg vs the floor's ${floor.cpuUsPerMsg})`,
      value: s('full x1').ratioMsgsPerSec,
      goal: '>= 1.5 (stretch 2)',
      pass: s('full x1').ratioMsgsPerSec >= 1.5,
    },
    { name: '100 clients at 10k msgs/s, p99 frame to socket write, ms', value: round((s('full x100 @10k/s').p99Us ?? NaN) / 1000, 3), goal: '< 5', pass: (s('full x100 @10k/s').p99Us ?? Infinity) < 5000 },
    { name: '10 clients at 10k msgs/s, p99 frame to socket write, ms', value: round((s('full x10 @10k/s').p99Us ?? NaN) / 1000, 3), goal: '< 2', pass: (s('full x10 @10k/s').p99Us ?? Infinity) < 2000 },
    { name: 'RSS with 2000 streams (shipped form, 1 relay client, after a minute, relay history apart), MB', value: mem2000.rssMB, goal: '< 80', pass: mem2000.rssMB < 80 },
    // Measured directly (bench/metrics-overhead.ts): the larger of the two costs metrics add.
    {
      name: `metrics overhead, %: a /metrics scrape of ${direct.streams} streams every 1 s (${direct.perScrapeMs} ms CPU each, % of one core) or latency recording (${direct.nsPerObserve} ns per message, % of the full path's CPU/msg), the larger`,
      value: round(directPct, 2),
      goal: '< 1',
      pass: directPct < 1,
    },
  ];

  const results = {
    kind: 'bench' as const,
    version: 1,
    quick,
    startedAt,
    durationSeconds: round((performance.now() - t0) / 1000, 1),
    machine: {
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      loadAverage1m5m15m: { start: loadAtStart, end: os.loadavg().map((v) => round(v, 2)) },
    },
    params: { rounds, streams: STREAM_COUNT, interval: '1m', closedEvery: 10, fixedRate: FIXED_RATE, warmMs: P.warmMs, measureMs: P.measureMs, fixedMs: P.fixedMs, memSeconds: P.memSeconds },
    layout:
      'separate processes: orchestrator (+simulator for memory), flood source, one consumer at a time (floor | binance npm | daemon), relay clients in their own process; loopback; msgs/s = upstream frames consumed per second; CPU = process.cpuUsage of the consumer; latency = frame arrival -> relay socket write (daemon sink)',
    scenarios,
    // cpuPerMsgPct / msgsPerSecPct: 'full x1 + scrape 1s' against 'full x1' (noisy, informative); direct: the target's.
    metricsOverhead: { cpuPerMsgPct: round(overheadCpu * 100, 2), msgsPerSecPct: round(overheadRate * 100, 2), direct },
    memory: {
      form: 'shipped: the bundle (dist/daemon/) through bin/kline-connector (npm start and the image), figures from its /metrics, no forced GC; 1000 symbols x 1s,1m from the simulator, 1 relay client on every stream',
      runs: memory,
      perAddedStream: perStream,
      history: historyCost,
    },
    targets,
  };
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  printTable(results.scenarios, results.memory.runs, results.targets, results.metricsOverhead);
  console.log(`load average (1, 5, 15 min) at start ${loadAtStart.join(", ")}, at end ${results.machine.loadAverage1m5m15m.end.join(", ")} (${results.machine.cpus} cpus)`);
  console.log(`memory per added stream: ${perStream.rssKB} KB RSS, ${perStream.heapKB} KB heap; relay history: ${historyCost.rssBytesPerCandle} B RSS per candle (${historyCost.payloadBytesPerCandle} B payload), ${historyCost.candlesHeld} candles held`);
  console.log(`wrote ${outFile} (${results.durationSeconds} s)`);
}

function printTable(
  scenarios: Record<string, Summary>,
  memory: readonly ShippedMemory[],
  targets: readonly { name: string; value: number; goal: string; pass: boolean }[],
  overhead: { cpuPerMsgPct: number; msgsPerSecPct: number; direct: MetricsOverhead },
): void {
  const rows: string[][] = [['scenario', 'msg/s', '×floor', 'CPU µs/msg', '×floor', 'p50 µs', 'p99 µs', 'p999 µs', 'RSS MB', 'heap MB', 'relay sent/s', 'clients open', 'flood CPU %']];
  for (const [name, x] of Object.entries(scenarios)) {
    rows.push([
      name,
      String(x.msgsPerSec),
      x.ratioMsgsPerSec.toFixed(2),
      x.cpuUsPerMsg.toFixed(2),
      x.ratioCpuUsPerMsg.toFixed(2),
      x.p50Us === undefined ? '' : String(x.p50Us),
      x.p99Us === undefined ? '' : String(x.p99Us),
      x.p999Us === undefined ? '' : String(x.p999Us),
      x.rssMB.toFixed(0),
      x.heapMB.toFixed(0),
      x.relaySentPerSec === undefined ? '' : String(x.relaySentPerSec),
      x.clientsOpen === undefined ? '' : String(x.clientsOpen),
      String(x.floodCpuPct),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  console.log('');
  for (const m of memory)
    console.log(`memory, shipped form, ${m.streams} streams (1s+1m), history ${m.historyPerStream}/stream, after ${m.seconds} s: RSS ${m.rssMB} MB (peak ${m.peakRssMB}), heap ${m.heapUsedMB} MB, external ${m.externalMB} MB`);
  console.log(`metrics overhead (scrape every 1 s vs none, flood rate): CPU/msg ${overhead.cpuPerMsgPct} %, msg/s ${overhead.msgsPerSecPct} %`);
  console.log(
    `metrics overhead, measured directly: ${overhead.direct.perScrapeMs} ms CPU per scrape of ${overhead.direct.streams} streams (${overhead.direct.scrapeEvery1sPct} % of a core at 1/s), ` +
      `latency recording ${overhead.direct.nsPerObserve} ns per message (${overhead.direct.observePctOfFullPath} % of the full path)`,
  );
  console.log('');
  for (const t of targets) console.log(`${t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.value} (goal ${t.goal})`);
}

/**
 * bench/metrics-overhead.ts in its own process with the launcher's young generation: the CPU of one
 * /metrics scrape on a daemon with `streams` streams, and of the per-message latency recording, each
 * measured directly (the difference of two flood-rate runs is smaller than their spread).
 */
async function metricsOverheadDirect(fullPathUsPerMsg: number): Promise<MetricsOverhead> {
  const args = ['--max-semi-space-size=2', here('./metrics-overhead.ts'), '--json', '--full-us-per-msg', String(fullPathUsPerMsg)];
  if (quick) args.push('--streams', '200', '--scrapes', '5', '--warm-ms', '2000', '--window-ms', '1000');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`bench/metrics-overhead.ts exited ${code}: ${out.slice(-500)}`);
  return JSON.parse(line) as MetricsOverhead;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
