/**
 * Pionex end to end (issue 17): the real daemon (startConnector) against the Pionex simulator, a REST
 * venue with no kline WebSocket, with a real relay client and real HTTP. Closed candles arrive in the
 * shared Binance kline event shape under `pionex:<symbol>@kline_1m`, each once, in order, equal to
 * the venue's REST row, with no socket ever opened; a REST outage and a lagging REST are recovered;
 * a hole stays absent; a malformed body is counted and skipped; a 429 closes the gate for its whole
 * window; /ready and /metrics show the poller per venue.
 *
 * Pionex's shortest interval is 1m, so the simulator and the daemon's wall clock run at 60x (a candle
 * closes every real second); everything that measures a duration (the REST gate, pacing, retries)
 * stays on the real monotonic clock (see test/chaos/runner.ts, "Clock").
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startConnector, type Connector } from '../../src/app.ts';
import type { StatusEvent } from '../../src/core/status.ts';
import type { VenueSimulator } from '../../src/simulator/dialect.ts';
import { pionexSimulator } from '../../src/venues/pionex/simulator/index.ts';
import { value } from '../helpers/prometheus.ts';
import { findPromtool, promtool } from '../ops/promtool.ts';
import { e2eConfig, RecordingClient, until } from './harness.ts';

const SPEED = 60;
const MIN = 60_000;
const SYMBOLS = ['BTC_USDT', 'ETH_USDT', 'SOL_USDT'];
const STREAMS = SYMBOLS.map((s) => `pionex:${s.toLowerCase()}@kline_1m`);

interface Stack {
  readonly sim: VenueSimulator;
  readonly connector: Connector;
  readonly client: RecordingClient;
  readonly events: StatusEvent[];
  readonly now: () => number;
  readonly http: string;
}
let stack: Stack | undefined;

afterEach(async () => {
  stack?.client.ws.terminate();
  await stack?.connector.shutdown('test');
  await stack?.sim.close();
  stack = undefined;
});

async function start(env: Record<string, unknown> = {}): Promise<Stack> {
  const origin = Date.now();
  const now = (): number => origin + (Date.now() - origin) * SPEED;
  const sim = await pionexSimulator.start({ now });
  const connector = await startConnector(e2eConfig({
    CONNECTOR_VENUES: 'pionex',
    CONNECTOR_PIONEX_SYMBOLS: SYMBOLS.join(','),
    CONNECTOR_PIONEX_REST_URL: sim.restUrl,
    ...env,
  }), {
    log: pino({ level: 'silent' }),
    clock: { now, monotonic: () => performance.now() },
    collectDefaultMetrics: false,
    gapRetryDelaysMs: [50, 100, 200, 500],
    // A venue without a kline WebSocket gets no pool: any socket would be a bug.
    wsFactory: () => {
      throw new Error('the daemon opened a WebSocket for a REST-polled venue');
    },
  });
  const events: StatusEvent[] = [];
  connector.status.subscribe((e) => events.push(e));
  const client = new RecordingClient(`ws://127.0.0.1:${connector.relayAddress.port}/stream?streams=${STREAMS.join('/')}`);
  await client.opened;
  stack = { sim, connector, client, events, now, http: `http://127.0.0.1:${connector.httpAddress?.port ?? 0}` };
  return stack;
}

/** One stream's closed candles: none missing, none twice, in order, each equal to the simulator's REST row. */
function audit(client: RecordingClient, stream: string, symbol: string) {
  const closed = client.messages.filter((m) => m.stream === stream && m.x);
  let missing = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let wrong = 0;
  closed.forEach((m, i) => {
    const truth = pionexSimulator.truth(symbol, '1m', m.t);
    const k = m.k;
    if (k.s !== truth.s || k.i !== truth.i || k.o !== truth.o || k.h !== truth.h || k.l !== truth.l || k.c !== truth.c || k.v !== truth.v || k.T !== truth.T) wrong++;
    if (k.q !== null || k.n !== null || k.V !== null || k.Q !== null || k.f !== null || k.L !== null) wrong++;
    const prev = closed[i - 1]?.t;
    if (prev === undefined) return;
    if (m.t === prev) duplicated++;
    else if (m.t < prev) outOfOrder++;
    else missing += (m.t - prev) / MIN - 1;
  });
  return { count: closed.length, missing, duplicated, outOfOrder, wrong, first: closed[0]?.t, last: closed.at(-1)?.t, times: closed.map((m) => m.t) };
}

const closedCount = (s: Stack): number => Math.min(...STREAMS.map((n) => s.client.closedCandles(n).length));

describe('Pionex end to end (REST-polled, no kline WebSocket)', () => {
  it('delivers every closed candle of every stream once, in order, as the venue’s REST row in the shared event shape, with no socket opened; /ready and /metrics show the poller', async () => {
    const s = await start();
    await until(() => closedCount(s) >= 8, '8 closed candles on every stream', 30_000);
    for (const [i, stream] of STREAMS.entries()) {
      const a = audit(s.client, stream, SYMBOLS[i] ?? '');
      expect({ stream, missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ stream, missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
    }
    // No open candles: Pionex publishes no kline stream.
    expect(s.client.messages.every((m) => m.x)).toBe(true);
    const k = s.client.messages[0]?.k ?? {};
    expect(k).toMatchObject({ s: 'BTC_USDT', i: '1m', x: true, n: null, q: null, V: null, Q: null, f: null, L: null, B: null });
    expect(s.sim.counters.connectionsOpened).toBe(0);
    expect(s.connector.pool.snapshot().connections).toEqual([]);
    // Under Pionex's 10 requests per second, never limited, never banned.
    expect(s.sim.counters.restBudgetUsedMax).toBeLessThan(10);
    expect(s.sim.counters.restLimited + s.sim.counters.restBanned + s.sim.counters.restInsideRetryAfter).toBe(0);

    const ready = await fetch(`${s.http}/ready`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { exchanges: { venue: string; ready: boolean; connections: { total: number }; streams: { live: number }; poll: { streamsPolled: number; lastPollAt: string; lagSeconds: number; polls: number } | null }[] };
    const ex = body.exchanges[0];
    expect(ex).toMatchObject({ venue: 'pionex', ready: true, connections: { total: 0 }, streams: { live: 3 } });
    expect(ex?.poll?.streamsPolled).toBe(3);
    expect(ex?.poll?.polls).toBeGreaterThanOrEqual(3 * 8);
    expect(Date.parse(ex?.poll?.lastPollAt ?? '')).toBeGreaterThan(s.now() - 5 * MIN);
    const metrics = await (await fetch(`${s.http}/metrics`)).text();
    expect(value(metrics, 'connector_poll_streams{venue="pionex"}')).toBe(3);
    expect(value(metrics, 'connector_polls_total{venue="pionex"}')).toBeGreaterThanOrEqual(24);
    expect(value(metrics, 'connector_poll_lag_seconds{venue="pionex"}')).toBeGreaterThan(0);
    expect(value(metrics, 'connector_poll_last_timestamp_seconds{venue="pionex"}')).toBeGreaterThan(0);
    expect(value(metrics, 'connector_rest_requests_total{venue="pionex"}')).toBeGreaterThanOrEqual(24);
    expect(value(metrics, 'connector_active_connections{venue="pionex"}')).toBe(0);
    expect(value(metrics, 'connector_streams_live{venue="pionex"}')).toBe(3);
    expect(metrics).not.toContain('connector_circuit_breaker_state{name="pionex.ws"}');
    expect(value(metrics, 'connector_circuit_breaker_state{name="pionex.rest"}')).toBe(0);
    if (findPromtool() !== undefined) {
      const check = promtool(['check', 'metrics'], metrics);
      expect(check.out.split('\n').filter((l) => /connector_poll/.test(l))).toEqual([]);
      expect(check.code, check.out).toBe(0);
    }
  });

  it('recovers a REST outage and a lagging REST: every candle once and in order, nothing invented', async () => {
    // The REST breaker opens after 5 failures in a row; let it half-open after 1-2 s, not 30 s.
    const s = await start({ CONNECTOR_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: 1, CONNECTOR_CIRCUIT_BREAKER_RECOVERY_MAX: 2 });
    await until(() => closedCount(s) >= 3, '3 closed candles on every stream', 30_000);
    // The venue fails every klines request for a while (~4 candles at 60x), then REST lags 3 minutes.
    s.sim.faults.restErrors(1000, 500);
    await new Promise((r) => setTimeout(r, 4000));
    s.sim.faults.restErrors(0, 500);
    s.sim.faults.restLag(3 * MIN);
    await new Promise((r) => setTimeout(r, 3000));
    s.sim.faults.restLag(0);
    const target = s.now();
    await until(() => STREAMS.every((n) => (s.client.closedCandles(n).at(-1) ?? 0) >= target - 2 * MIN), 'the streams caught up', 30_000);
    for (const [i, stream] of STREAMS.entries()) {
      const a = audit(s.client, stream, SYMBOLS[i] ?? '');
      expect({ stream, missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ stream, missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
      expect(a.count).toBeGreaterThanOrEqual(8);
    }
    expect(s.connector.pipeline.gapStats.holes).toBe(0);
    const poll = s.connector.pool.snapshot().poll;
    expect(poll?.failures).toBeGreaterThan(0);
    expect(poll?.lagRetries).toBeGreaterThan(0);
  }, 60_000);

  it('leaves a hole absent (counted, never invented) and delivers the candles after it in order', async () => {
    const s = await start();
    await until(() => closedCount(s) >= 2, '2 closed candles on every stream', 30_000);
    // Two candles a few closes ahead never existed on ETH_USDT.
    const from = Math.floor(s.now() / MIN) * MIN + 3 * MIN;
    s.sim.faults.hole(pionexSimulator.seriesSymbol('ETH_USDT'), '1m', from, from + 2 * MIN);
    await until(() => (s.client.closedCandles(STREAMS[1] ?? '').at(-1) ?? 0) >= from + 4 * MIN, 'candles past the hole', 30_000);
    const a = audit(s.client, STREAMS[1] ?? '', 'ETH_USDT');
    expect(a.times).not.toContain(from);
    expect(a.times).not.toContain(from + MIN);
    expect(a.missing).toBe(2);
    expect({ duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ duplicated: 0, outOfOrder: 0, wrong: 0 });
    expect(s.connector.pipeline.gapStats.holes).toBe(2);
    // The other streams have no hole.
    expect(audit(s.client, STREAMS[0] ?? '', 'BTC_USDT').missing).toBe(0);
    expect(s.events.some((e) => e.type === 'backfill' && e.stream === STREAMS[1] && e.holes === 2)).toBe(true);
  });

  it('counts and skips malformed klines bodies (the simulator’s garbage fault), then delivers what they hid from the next good answer', async () => {
    const s = await start();
    await until(() => closedCount(s) >= 2, '2 closed candles on every stream', 30_000);
    // Enough bad bodies for every stream's poll to use up the REST client's four attempts on them.
    s.sim.faults.garbage(40);
    await until(() => s.connector.pool.stats().parseErrors >= STREAMS.length, 'a failed poll on every stream', 20_000);
    const target = s.now();
    await until(() => STREAMS.every((n) => (s.client.closedCandles(n).at(-1) ?? 0) >= target), 'the streams caught up', 30_000);
    for (const [i, stream] of STREAMS.entries()) {
      const a = audit(s.client, stream, SYMBOLS[i] ?? '');
      expect({ stream, missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ stream, missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
    }
    const parseErrors = s.events.filter((e) => e.type === 'parse.error');
    expect(parseErrors.length).toBe(s.connector.pool.stats().parseErrors);
    const first = parseErrors[0];
    expect(first?.type === 'parse.error' ? [first.venue, /body/.test(first.reason)] : []).toEqual(['pionex', true]);
    const metrics = await (await fetch(`${s.http}/metrics`)).text();
    expect(value(metrics, 'connector_parse_errors_total{venue="pionex"}')).toBe(parseErrors.length);
  });

  it('honours a 429: no request inside its window, the ban in /ready while it lasts, and nothing lost', async () => {
    const s = await start();
    await until(() => closedCount(s) >= 2, '2 closed candles on every stream', 30_000);
    s.sim.faults.restErrors(1, 429, 3);
    await until(() => s.events.some((e) => e.type === 'ratelimit'), 'the 429', 10_000);
    const ready = (await (await fetch(`${s.http}/ready`)).json()) as { exchanges: { rest: { banned: boolean } }[] };
    expect(ready.exchanges[0]?.rest.banned).toBe(true);
    const target = s.now() + 2 * MIN;
    await until(() => STREAMS.every((n) => (s.client.closedCandles(n).at(-1) ?? 0) >= target), 'candles after the window', 30_000);
    expect(s.sim.counters.restStatuses[429]).toBe(1);
    expect(s.sim.counters.restInsideRetryAfter).toBe(0);
    for (const [i, stream] of STREAMS.entries()) {
      const a = audit(s.client, stream, SYMBOLS[i] ?? '');
      expect({ stream, missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ stream, missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
    }
    expect(s.events.find((e) => e.type === 'ratelimit')).toMatchObject({ venue: 'pionex', scope: 'rest', kind: '429', retryAfterMs: 3000 });
  });

  it('resumes a client from a `since` older than the daemon: the candles before its start come from Pionex REST (endTime pages, newest first), every one once and in order', async () => {
    const s = await start();
    await until(() => closedCount(s) >= 2, '2 closed candles on every stream', 30_000);
    // 700 candles back: more than one Pionex page (500), all of it before this daemon started.
    const since = Math.floor(s.now() / MIN) * MIN - 700 * MIN;
    const resumed = new RecordingClient(`ws://127.0.0.1:${s.connector.relayAddress.port}/stream?streams=${STREAMS[0] ?? ''}&since=${since}`);
    try {
      await resumed.opened;
      await until(() => (resumed.closedCandles(STREAMS[0] ?? '').length) >= 703, 'the replay and live candles after it', 30_000);
      const a = audit(resumed, STREAMS[0] ?? '', 'BTC_USDT');
      expect(a.first).toBe(since);
      expect({ missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
      expect(s.connector.relay.stats().replayedFromRest).toBeGreaterThanOrEqual(690);
    } finally {
      resumed.ws.terminate();
    }
  });

  it('never probes a Pionex ban: a 429 without Retry-After keeps every request back for the derived 61 s, then the missed candles arrive once and in order', async () => {
    const s = await start();
    await until(() => closedCount(s) >= 2, '2 closed candles on every stream', 30_000);
    // Pionex's own answer: no Retry-After, a 60 s ban (the simulator counts any request inside it).
    s.sim.faults.restErrors(1, 429, 0);
    await until(() => s.events.some((e) => e.type === 'ratelimit'), 'the 429', 10_000);
    const bannedAt = Date.now();
    expect(s.events.find((e) => e.type === 'ratelimit')).toMatchObject({ venue: 'pionex', kind: '429', retryAfterMs: 61_000 });
    await new Promise((r) => setTimeout(r, 3000));
    // Honest while it lasts: banned, and the streams (a candle a second at 60x) overdue.
    const during = (await (await fetch(`${s.http}/ready`)).json()) as { ready: boolean; exchanges: { rest: { banned: boolean }; streams: { live: number } }[] };
    expect(during.exchanges[0]?.rest.banned).toBe(true);
    expect(during.ready).toBe(false);
    const lastBefore = Math.max(...STREAMS.map((n) => s.client.closedCandles(n).at(-1) ?? 0));
    await until(() => STREAMS.every((n) => (s.client.closedCandles(n).at(-1) ?? 0) > lastBefore + 55 * MIN), 'the candles missed during the ban', 80_000);
    // Nothing left before 61 s had passed, nothing was sent into the ban.
    expect(Date.now() - bannedAt).toBeGreaterThanOrEqual(60_000);
    expect(s.sim.counters.restInsideRetryAfter).toBe(0);
    expect(s.sim.counters.restStatuses[429]).toBe(1);
    for (const [i, stream] of STREAMS.entries()) {
      const a = audit(s.client, stream, SYMBOLS[i] ?? '');
      expect({ stream, missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ stream, missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
    }
    await until(() => s.connector.pool.snapshot().staleStreams.length === 0, 'the streams live again', 10_000);
  }, 120_000);
});
