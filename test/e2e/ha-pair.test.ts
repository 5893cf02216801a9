/**
 * An HA pair through a replica kill and a broker restart (contract §10, issue 15 "done when"): two
 * daemons (`node src/main.ts`, real processes) with the same configuration both publish every closed
 * candle to one real `nats-server -js`, while a seeded storm of faults hits the simulator they share.
 * Mid-storm one replica is killed with SIGKILL (no shutdown, nothing flushed), the broker is stopped
 * and started again, the killed replica is started again, and then its partner is killed too (so the
 * last stretch of every subject comes from the restarted replica alone). Afterwards the JetStream stream
 * is read back with a consumer and audited per subject against the simulator's ground truth: every
 * closed candle from the first one stored to the cut-off exactly once, in open-time order, with the
 * simulator's values, and the injected holes (candles Binance never had) absent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { klineAt } from '../../src/venues/binance/simulator/klines.ts';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { openTimeAt } from '../../src/core/intervals.ts';
import { NATS_SERVER_MISSING, NatsServer } from '../helpers/nats-server.ts';
import { readAll } from '../helpers/jetstream.ts';
import { freePort, spawnDaemon, type SpawnedDaemon } from './spawn.ts';
import { mulberry32 } from '../../src/simulator/random.ts';
import { sleep } from './harness.ts';

const SYMBOLS = ['btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt', 'adausdt'];
const STEP = 1000;
const SEED = 15;

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** Stops a spawned daemon by its pid: SIGKILL (the test's own kill) or SIGTERM, and waits for its exit. */
async function stop(d: SpawnedDaemon, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null || d.proc.pid === undefined) return;
  process.kill(d.proc.pid, signal);
  const timer = setTimeout(() => {
    if (d.proc.pid !== undefined && d.proc.exitCode === null && d.proc.signalCode === null) process.kill(d.proc.pid, 'SIGKILL');
  }, 10_000);
  await d.exited;
  clearTimeout(timer);
}

async function replica(env: Record<string, string>): Promise<{ daemon: SpawnedDaemon; http: number }> {
  const http = await freePort();
  const daemon = spawnDaemon({ ...env, CONNECTOR_RELAY_PORT: String(await freePort()), CONNECTOR_WSS_HEALTH_CHECK_PORT: String(http) });
  cleanups.push(() => stop(daemon, 'SIGTERM'));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${http}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { daemon, http };
    if (daemon.proc.exitCode !== null || Date.now() > deadline) throw new Error(`replica did not come up: ${daemon.output.join('')}`);
    await sleep(100);
  }
}

describe.skipIf(NATS_SERVER_MISSING !== undefined)(`an HA pair on JetStream${NATS_SERVER_MISSING === undefined ? '' : ` (skipped: ${NATS_SERVER_MISSING})`}`, () => {
  it('keeps every closed candle of every subject exactly once, in order, with no gaps, through a SIGKILL of one replica mid fault storm, a broker restart and the replica coming back', async () => {
    const broker = await NatsServer.start();
    cleanups.push(() => broker.dispose());
    const sim = await BinanceSimulator.start({ host: '127.0.0.1', port: 0, openUpdateMs: 250 });
    cleanups.push(() => sim.close());
    const env = {
      CONNECTOR_SYMBOLS: SYMBOLS.join(','),
      CONNECTOR_INTERVALS: '1s',
      CONNECTOR_BINANCE_WS_URL: sim.wsUrl,
      CONNECTOR_BINANCE_REST_URL: sim.restUrl,
      CONNECTOR_RELAY_HOST: '127.0.0.1',
      CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
      CONNECTOR_NATS_URL: broker.url,
      CONNECTOR_LOG_LEVEL: 'warn',
      CONNECTOR_RECONNECT_BASE_MS: '100',
      CONNECTOR_RECONNECT_MAX_MS: '1000',
      CONNECTOR_RECONNECT_MAX_RETRIES: '1000',
      CONNECTOR_STALE_STREAM_MS: '2500',
    };
    const a = await replica(env);
    const b = await replica(env);

    // The storm: seeded, both replicas see every fault (they share the simulator).
    const rnd = mulberry32(SEED);
    const holes: { symbol: string; from: number; to: number }[] = [];
    const started = Date.now();
    let aRestarted: Promise<{ daemon: SpawnedDaemon; http: number }> | undefined;
    let killed = false;
    let brokerBounced = false;
    let partnerKilled = false;
    while (Date.now() - started < 24_000) {
      const at = Date.now() - started;
      if (!killed && at > 7000) {
        killed = true;
        await stop(a.daemon, 'SIGKILL');
      }
      if (!brokerBounced && at > 11_000) {
        brokerBounced = true;
        await broker.stop();
        await sleep(1500);
        await broker.restart();
      }
      if (aRestarted === undefined && at > 14_000) aRestarted = replica(env);
      if (!partnerKilled && at > 19_000) {
        partnerKilled = true;
        await aRestarted;
        await stop(b.daemon, 'SIGKILL');
      }
      const pick = rnd();
      const symbol = SYMBOLS[Math.floor(rnd() * SYMBOLS.length)] ?? 'btcusdt';
      if (pick < 0.2) sim.faults.dropAll();
      else if (pick < 0.4) sim.faults.stallStreams([`${symbol}@kline_1s`], 1500 + Math.floor(rnd() * 2000));
      else if (pick < 0.55) sim.faults.restErrors(1 + Math.floor(rnd() * 3), 500);
      else if (pick < 0.65) sim.faults.closeAll(1011, 'Internal error');
      else if (pick < 0.75) sim.faults.garbage(2);
      else if (pick < 0.85) sim.faults.serverShutdown();
      else {
        const from = openTimeAt('1s', Date.now()) + 2 * STEP;
        const to = from + (1 + Math.floor(rnd() * 2)) * STEP;
        sim.faults.hole(symbol, '1s', from, to);
        holes.push({ symbol, from, to });
      }
      await sleep(300 + Math.floor(rnd() * 500));
    }
    sim.faults.reset();
    for (const h of holes) sim.faults.hole(h.symbol, '1s', h.from, h.to);
    const a2 = await aRestarted;
    const cutoff = openTimeAt('1s', Date.now()) + 2 * STEP;
    const isHole = (symbol: string, t: number): boolean => holes.some((h) => h.symbol === symbol && t >= h.from && t < h.to);
    const subjectOf = (symbol: string): string => `candles.binance.${symbol.toUpperCase()}.1s`;

    // Settled: every subject has reached the cut-off (bounded wait).
    let stored = await readAll(broker.url);
    const deadline = Date.now() + 40_000;
    while (!SYMBOLS.every((s) => stored.some((m) => m.subject === subjectOf(s) && m.t >= cutoff)) && Date.now() < deadline) {
      await sleep(1000);
      stored = await readAll(broker.url);
    }

    const report: Record<string, { stored: number; lost: number; duplicated: number; outOfOrder: number; wrong: number; invented: number }> = {};
    for (const symbol of SYMBOLS) {
      const times = stored.filter((m) => m.subject === subjectOf(symbol) && m.t < cutoff);
      const r = { stored: times.length, lost: 0, duplicated: 0, outOfOrder: 0, wrong: 0, invented: 0 };
      const seen = new Set<number>();
      let prev = -Infinity;
      for (const m of times) {
        if (seen.has(m.t)) r.duplicated++;
        else if (m.t < prev) r.outOfOrder++;
        if (isHole(symbol, m.t)) r.invented++;
        const truth = klineAt(symbol, '1s', m.t);
        if (m.k.o !== truth.o || m.k.h !== truth.h || m.k.l !== truth.l || m.k.c !== truth.c || m.k.v !== truth.v) r.wrong++;
        seen.add(m.t);
        prev = Math.max(prev, m.t);
      }
      const first = times[0]?.t ?? cutoff;
      for (let t = first; t < cutoff; t += STEP) if (!seen.has(t) && !isHole(symbol, t)) r.lost++;
      report[symbol] = r;
    }
    for (const symbol of SYMBOLS) {
      const r = report[symbol];
      expect({ symbol, lost: r?.lost, duplicated: r?.duplicated, outOfOrder: r?.outOfOrder, wrong: r?.wrong, invented: r?.invented }).toEqual({
        symbol,
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
        wrong: 0,
        invented: 0,
      });
      // The run was long enough to mean something: the storm alone is 24 s of 1s candles per subject.
      expect(r?.stored ?? 0, JSON.stringify(report)).toBeGreaterThan(20);
    }
    expect(holes.length).toBeGreaterThan(0);
    // The restarted replica published on its own once its partner was gone.
    const metrics = await (await fetch(`http://127.0.0.1:${a2?.http ?? 0}/metrics`)).text();
    expect(metrics).toMatch(/connector_sink_published_total\{sink="jetstream"\} [1-9]/);
  }, 150_000);
});
