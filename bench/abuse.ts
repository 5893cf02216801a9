/**
 * `npm run abuse [-- --seconds N] [-- --only name[,name]] [-- --streams N] [-- --out file]`: the
 * attacks of issue 12 against the real daemon, one fresh daemon per attack. Not a test: it reports
 * what happened; nothing in it asserts a figure.
 *
 * The daemon: `node --max-old-space-size=384 --max-semi-space-size=2 src/main.ts` (the production
 * overlay's heap), CONNECTOR_ENV=production with CONNECTOR_RELAY_AUTH=none (the attacks are the
 * ones that need no token; with a token they stop at 401, except f), upstream the bundled
 * simulator started in this process, `--streams` 1s streams (default 1000: enough traffic that a
 * never-reading client gets past the ~10 MB loopback socket buffers within the window). Per attack:
 *   1. spawn, wait for the relay and /ready, connect the well-behaved client (3 streams, reads
 *      everything, times a LIST_SUBSCRIPTIONS every 2 s) and let it see closed candles;
 *   2. run the attack for `--seconds` (default 40), a newcomer probe from another address every 5 s;
 *   3. stop sending, read /metrics and /health (held = alive and /health 200), close the attackers,
 *      SIGTERM the daemon (SIGKILL after 20 s).
 * RSS (VmRSS) and CPU (utime + stime) come from /proc/<pid>; log bytes are the daemon's stdout bytes
 * during the attack. Prints a table and writes bench/abuse-results.json. Every process it spawns is
 * killed by its pid on the way out, whether by error, SIGINT or SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { BinanceSimulator } from '../src/venues/binance/simulator/server.ts';
import { ATTACKS, type Attack, type AttackFigures } from './abuse-attacks.ts';
import { Children, Crowd, GoodClient, MB, ProcSampler, ROOT, SpawnedDaemon, aborted, httpGet, isAborted, metricValue, probeConnect, sleep, type CrowdStats, type GoodClientStats } from './abuse-lib.ts';
import { argValue, benchSymbols, here } from './lib.ts';

const argv = process.argv.slice(2);
const seconds = Number(argValue(argv, '--seconds') ?? 40);
const streamCount = Number(argValue(argv, '--streams') ?? 1000);
const only = argValue(argv, '--only')?.split(',').map((s) => s.trim());
const outFile = argValue(argv, '--out') ?? here('./abuse-results.json');
const HEAP_MB = 384;
const NODE_FLAGS = [`--max-old-space-size=${HEAP_MB}`, '--max-semi-space-size=2'];
const MAX_FRAME_BYTES = 64 * 1024;
const GOOD_STREAMS = ['s000usdt@kline_1s', 's001usdt@kline_1s', 's002usdt@kline_1s'];

if (!Number.isFinite(seconds) || seconds < 1 || !Number.isInteger(streamCount) || streamCount < GOOD_STREAMS.length) {
  console.error('usage: npm run abuse -- [--seconds N>=1] [--streams N>=3] [--only name[,name]] [--out file]');
  process.exit(64);
}
const selected = only === undefined ? ATTACKS : ATTACKS.filter((a) => only.includes(a.name));
if (selected.length === 0) {
  console.error(`--only: no such attack; known: ${ATTACKS.map((a) => a.name).join(', ')}`);
  process.exit(64);
}

interface AttackResult {
  name: string;
  title: string;
  windowSeconds: number;
  held: boolean;
  health: string;
  daemonExit: { code: number | null; signal: string | null } | null;
  /** stderr's last lines when the daemon died (V8's out-of-memory report lands there). */
  crash: string | null;
  rssStartMB: number;
  peakRssMB: number;
  /** VmHWM: the kernel's own peak for the whole process lifetime (warm-up included). */
  hwmMB: number;
  cpuAvgPct: number;
  cpuMaxPct: number;
  good: GoodClientStats & { longestGapS: number };
  /** connectedAtEnd: the daemon's count (connector_relay_clients) minus the good client, before the drain. */
  attackers: CrowdStats & { connectedAtEnd: number | null };
  relay: { slowConsumers: number | null; rejected: number | null; clientErrors: number | null };
  logBytes: number;
  stderrBytes: number;
  newcomers: { ok: number; attempts: number; outcomes: Record<string, number> };
  /** The suite's own event-loop delay (its clients share a process): large values blur the good client's gaps. */
  suiteLoopMaxMs: number;
  figures: AttackFigures;
  error: string | null;
}

const children = new Children();
let simulator: BinanceSimulator | undefined;
let shuttingDown = false;

async function cleanupAndExit(code: number, why: string): Promise<never> {
  if (!shuttingDown) {
    shuttingDown = true;
    console.error(`abuse: ${why}; stopping every process it started`);
    children.killAll();
    await simulator?.close().catch(() => undefined);
  }
  process.exit(code);
}
process.once('SIGINT', () => void cleanupAndExit(130, 'SIGINT'));
process.once('SIGTERM', () => void cleanupAndExit(143, 'SIGTERM'));
process.on('exit', () => {
  children.killAll();
});

function daemonEnv(sim: BinanceSimulator, symbols: readonly string[]): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    MALLOC_ARENA_MAX: '2', // as the image sets it
    CONNECTOR_ENV: 'production',
    CONNECTOR_RELAY_AUTH: 'none',
    CONNECTOR_REQUIRE_TLS: 'false', // the simulator speaks ws:// and http://
    CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
    CONNECTOR_BINANCE_REST_URL: sim.restUrl,
    CONNECTOR_SYMBOLS: symbols.join(','),
    CONNECTOR_INTERVALS: '1s',
    CONNECTOR_RELAY_HOST: '127.0.0.1',
    CONNECTOR_RELAY_PORT: '0',
    CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
    CONNECTOR_WSS_HEALTH_CHECK_PORT: '0',
    CONNECTOR_MAX_MEMORY_MB: '512', // the production overlay's container limit
    CONNECTOR_RELAY_MAX_FRAME_BYTES: String(MAX_FRAME_BYTES),
    CONNECTOR_LOG_LEVEL: 'info',
  };
}

async function waitReady(d: SpawnedDaemon, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && d.alive) {
    const r = await httpGet(d.httpPort, '/ready').catch(() => undefined);
    if (r?.status === 200) return true;
    await sleep(250);
  }
  return false;
}

async function runAttack(attack: Attack, sim: BinanceSimulator, symbols: readonly string[]): Promise<AttackResult> {
  const streams = symbols.map((s) => `${s}@kline_1s`);
  const daemon = await SpawnedDaemon.start(NODE_FLAGS, daemonEnv(sim, symbols), children);
  const sampler = new ProcSampler(daemon.pid);
  const crowd = new Crowd();
  let good: GoodClient | undefined;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  try {
    if (!(await waitReady(daemon, 30_000))) throw new Error('daemon not ready within 30 s');
    good = new GoodClient(daemon.relayPort, GOOD_STREAMS);
    if (!(await good.warm(2, 15_000))) throw new Error('the well-behaved client saw no closed candles within 15 s');

    const controller = new AbortController();
    const onExit = (): void => {
      controller.abort();
    };
    void daemon.exited.then(onExit);
    const deadline = setTimeout(() => {
      controller.abort();
    }, seconds * 1000);
    const newcomers = { ok: 0, attempts: 0, outcomes: {} as Record<string, number> };
    const probing = (async () => {
      while (!isAborted(controller.signal)) {
        await Promise.race([sleep(5000), aborted(controller.signal)]);
        if (isAborted(controller.signal)) break;
        const outcome = await probeConnect(daemon.relayPort);
        newcomers.attempts++;
        if (outcome === 'ok') newcomers.ok++;
        newcomers.outcomes[outcome] = (newcomers.outcomes[outcome] ?? 0) + 1;
      }
    })();

    const t0 = performance.now();
    const log0 = daemon.stdoutBytes;
    const err0 = daemon.stderrBytes;
    loop.enable();
    good.startWindow();
    const ctx = { relayPort: daemon.relayPort, streams, signal: controller.signal, maxFrameBytes: MAX_FRAME_BYTES };
    let figures: AttackFigures = {};
    let error: string | null = null;
    const running = attack.run(ctx, crowd).then(
      (f) => {
        figures = f;
      },
      (err: unknown) => {
        error = err instanceof Error ? err.message : String(err);
      },
    );
    await Promise.race([running, aborted(controller.signal)]);
    controller.abort(); // a counted attack that finished early ends the window
    clearTimeout(deadline);
    crowd.quiet();
    await running;
    await probing;
    const t1 = performance.now();
    const goodStats = good.endWindow();
    loop.disable();
    // No more upstream data from here on (only this daemon's sockets stall), so no cut can be caused
    // by what follows: the drain below only reveals cuts the daemon made during the attack.
    sim.faults.stallSockets(120_000);
    // What the daemon wrote during the attack may still be in the pipe: let it arrive (it logs
    // nothing else while idle).
    await sleep(1000);
    const logBytes = daemon.stdoutBytes - log0;
    const stderrBytes = daemon.stderrBytes - err0;

    // The daemon's view, before the attackers are closed.
    const metrics = daemon.alive ? await httpGet(daemon.httpPort, '/metrics', 10_000).catch(() => undefined) : undefined;
    const health = daemon.alive ? await httpGet(daemon.httpPort, '/health', 5000).then((r) => `${r.status}`, (e: unknown) => (e instanceof Error ? e.message : 'error')) : 'dead';
    const relayClients = metrics === undefined ? undefined : metricValue(metrics.body, 'connector_relay_clients');
    const connectedAtEnd = relayClients === undefined ? null : Math.max(0, relayClients - (good.connected ? 1 : 0));
    const w = sampler.window(t0, t1);
    const alive = daemon.alive;
    // Cuts the never-reading attackers could not see while paused: their backlog, then the close frame.
    await crowd.drain(3000);
    crowd.stop();
    good.close();
    good = undefined;
    const exit = alive ? await daemon.stop() : daemon.exit!;
    return {
      name: attack.name,
      title: attack.title,
      windowSeconds: Math.round((t1 - t0) / 100) / 10,
      held: alive && health === '200',
      health,
      daemonExit: { code: exit.code, signal: exit.signal },
      crash: alive ? null : lastLines(daemon.stderrTail, 6) || lastLines(daemon.stdoutTail, 3),
      rssStartMB: Math.round(w.rssStartBytes / MB),
      peakRssMB: Math.round(w.peakRssBytes / MB),
      hwmMB: Math.round(sampler.hwmBytes / MB),
      cpuAvgPct: Math.round(w.cpuAvgPct),
      cpuMaxPct: Math.round(w.cpuMaxPct),
      good: { ...goodStats, longestGapS: Math.round(goodStats.longestGapMs / 100) / 10 },
      attackers: { ...crowd.stats, connectedAtEnd },
      relay: {
        slowConsumers: metrics === undefined ? null : (metricValue(metrics.body, 'connector_relay_slow_consumers_total') ?? null),
        rejected: metrics === undefined ? null : (metricValue(metrics.body, 'connector_relay_rejected_total') ?? null),
        clientErrors: metrics === undefined ? null : (metricValue(metrics.body, 'connector_relay_client_errors_total') ?? null),
      },
      logBytes,
      stderrBytes,
      newcomers,
      suiteLoopMaxMs: Math.round(loop.max / 1e6),
      figures,
      error,
    };
  } finally {
    loop.disable();
    crowd.stop();
    good?.close();
    sampler.stop();
    if (daemon.alive) await daemon.stop();
  }
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

function failed(attack: Attack, err: unknown): AttackResult {
  return {
    name: attack.name,
    title: attack.title,
    windowSeconds: 0,
    held: false,
    health: 'n/a',
    daemonExit: null,
    crash: null,
    rssStartMB: 0,
    peakRssMB: 0,
    hwmMB: 0,
    cpuAvgPct: 0,
    cpuMaxPct: 0,
    good: { longestGapMs: 0, longestGapS: 0, closedSeen: 0, missed: 0, duplicates: 0, cuts: [], controlRttMaxMs: 0, controlTimeouts: 0 },
    attackers: { opened: 0, rejected: {}, cut: 0, closedSeen: {}, errors: 0, maxOpen: 0, connectedAtEnd: null },
    relay: { slowConsumers: null, rejected: null, clientErrors: null },
    logBytes: 0,
    stderrBytes: 0,
    newcomers: { ok: 0, attempts: 0, outcomes: {} },
    suiteLoopMaxMs: 0,
    figures: {},
    error: err instanceof Error ? err.message : String(err),
  };
}

function kb(bytes: number): string {
  return bytes >= MB ? `${(bytes / MB).toFixed(1)} MB` : `${(bytes / 1024).toFixed(0)} KB`;
}

function printTable(results: readonly AttackResult[]): void {
  const rows: string[][] = [['attack', 'held', 'peak RSS MB', 'CPU % avg/max', 'longest gap s', 'good cut', 'attackers cut/opened', 'newcomers ok', 'log bytes', 'daemon exit']];
  for (const r of results) {
    const exit = r.daemonExit === null ? 'n/a' : r.daemonExit.signal ?? String(r.daemonExit.code);
    rows.push([
      r.name,
      r.held ? 'yes' : 'NO',
      `${r.peakRssMB} (from ${r.rssStartMB})`,
      `${r.cpuAvgPct}/${r.cpuMaxPct}`,
      // A daemon that died ended the window: the gap went on past it.
      `${r.good.longestGapS.toFixed(1)}${r.held || r.daemonExit === null ? '' : '+'}`,
      r.good.cuts.length === 0 ? 'no' : `${r.good.cuts.length}× (${[...new Set(r.good.cuts.map((c) => c.code))].join(',')})`,
      `${r.attackers.cut}/${r.attackers.opened}`,
      `${r.newcomers.ok}/${r.newcomers.attempts}`,
      kb(r.logBytes),
      exit,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  console.log('');
  for (const r of results) {
    const figures = Object.entries(r.figures)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const tally = (o: Record<string, number>): string =>
      Object.entries(o)
        .map(([s, n]) => `${s}×${n}`)
        .join(' ');
    const rejected = tally(r.attackers.rejected);
    const closes = tally(r.attackers.closedSeen);
    console.log(`${r.name}: ${r.title}`);
    console.log(
      `  good client: ${r.good.closedSeen} closed, ${r.good.missed} missed, ${r.good.duplicates} dup, control RTT max ${Math.round(r.good.controlRttMaxMs)} ms` +
        `; relay: slow consumers ${r.relay.slowConsumers ?? '?'}, rejected ${r.relay.rejected ?? '?'}, clients at end ${r.attackers.connectedAtEnd ?? '?'}` +
        `; attackers max open ${r.attackers.maxOpen}${closes === '' ? '' : `, closes ${closes}`}${rejected === '' ? '' : `, refused ${rejected}`}; suite loop max ${r.suiteLoopMaxMs} ms`,
    );
    if (figures !== '') console.log(`  ${figures}`);
    if (r.crash !== null) console.log(`  daemon died: ${r.crash.replace(/\n/g, '\n    ')}`);
    if (r.error !== null) console.log(`  error: ${r.error}`);
  }
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout (e.g. an unpacked tarball): the results simply carry no commit
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  simulator = await BinanceSimulator.start({ host: '127.0.0.1', port: 0 });
  const symbols = benchSymbols(streamCount);
  console.log(`abuse: ${selected.length} attack(s), ${seconds} s each, ${streamCount} 1s streams, daemon heap ${HEAP_MB} MB, simulator ${simulator.wsUrl}`);
  const results: AttackResult[] = [];
  for (const attack of selected) {
    if (shuttingDown) break;
    console.log(`-- ${attack.name}: ${attack.title}`);
    let r: AttackResult;
    try {
      r = await runAttack(attack, simulator, symbols);
    } catch (err) {
      r = failed(attack, err);
    }
    console.log(
      `   held=${r.held ? 'yes' : 'NO'} peakRSS=${r.peakRssMB} MB cpu=${r.cpuAvgPct}/${r.cpuMaxPct} % gap=${r.good.longestGapS} s goodCut=${r.good.cuts.length} ` +
        `attackersCut=${r.attackers.cut}/${r.attackers.opened} log=${kb(r.logBytes)}${r.error === null ? '' : ` error=${r.error}`}`,
    );
    results.push(r);
  }
  await simulator.close();
  simulator = undefined;
  const out = {
    kind: 'abuse',
    version: 1,
    commit: gitCommit(),
    startedAt: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: { node: process.version, cpus: os.cpus().length },
    options: { seconds, streams: streamCount, heapMB: HEAP_MB, nodeFlags: NODE_FLAGS, goodStreams: GOOD_STREAMS },
    results,
  };
  writeFileSync(outFile, `${JSON.stringify(out, null, 2)}\n`);
  console.log('');
  printTable(results);
  console.log(`wrote ${outFile} (${out.durationSeconds} s)`);
}

main().catch(async (err: unknown) => {
  console.error(err);
  await cleanupAndExit(1, 'error');
});
