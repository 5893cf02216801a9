/**
 * The REST client against the simulator's rate-limit answers: a Retry-After is the IP's (contract §3),
 * the breaker's half-open trials follow CONNECTOR_CIRCUIT_BREAKER_HALF_OPEN_CALLS.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { RestClient } from '../../src/upstream/rest.ts';
import { binanceSpot } from '../../src/venues/binance/spot.ts';
import { EnvSchema } from '../../src/config/schema.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import type { StreamRef } from '../../src/core/candle.ts';
import { openTimeAt } from '../../src/core/intervals.ts';

const MIN = 60_000;
const SYMBOLS = ['btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt', 'adausdt', 'dogeusdt', 'trxusdt', 'linkusdt', 'dotusdt', 'ltcusdt', 'bchusdt'];
let sim: BinanceSimulator;
let rest: RestClient | undefined;

beforeEach(async () => {
  sim = await BinanceSimulator.start();
});
afterEach(async () => {
  await rest?.close();
  rest = undefined;
  await sim.close();
});

function client(extra: Record<string, unknown> = {}): { rest: RestClient; status: StatusStream; events: StatusEvent[]; refs: StreamRef[] } {
  const config = EnvSchema.parse({ CONNECTOR_BINANCE_REST_URL: sim.restUrl, ...extra });
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const registry = new StreamRegistry();
  const refs = SYMBOLS.map((s) => registry.register('binance', `${s}@kline_1m`, s.toUpperCase(), '1m'));
  const r = new RestClient({ config, venue: binanceSpot, restUrl: config.venues[0]!.restUrl, status, log: pino({ level: 'silent' }), retryBaseMs: 10 });
  rest = r;
  return { rest: r, status, events, refs };
}

/**
 * Open the pool's keep-alive connections first, so the requests sent beside the refused one are on the
 * wire at once (the simulator excuses those as in flight) rather than still connecting.
 */
async function warmUp(rest: RestClient, refs: readonly StreamRef[], to: number): Promise<void> {
  await Promise.all(refs.map((s) => rest.fetchClosed(s, to - MIN, to)));
}

describe('Binance REST: a Retry-After is the IP\'s', () => {
  it('after a 429, no request of any stream leaves until its Retry-After has passed (requests in flight aside)', async () => {
    // Two in flight, 150 ms per answer: what outside testing saw 16 requests slip through.
    const { rest, refs, events } = client({ CONNECTOR_REST_POOL_CONNECTIONS: 2 });
    const to = openTimeAt('1m', Date.now());
    await warmUp(rest, refs.slice(0, 2), to);
    sim.faults.restLatency(150);
    sim.faults.restErrors(1, 429, 2);
    const base = sim.counters.restRequests;
    const got = await Promise.all(refs.map((s) => rest.fetchClosed(s, to - 3 * MIN, to)));
    expect(got.map((g) => g.length)).toEqual(refs.map(() => 3));
    expect(sim.counters.rest429).toBe(1);
    expect(sim.counters.restInsideRetryAfter).toBe(0);
    expect(sim.counters.restRequests - base).toBe(refs.length + 1);
    expect(events.filter((e) => e.type === 'ratelimit')).toEqual([{ type: 'ratelimit', venue: 'binance', scope: 'rest', kind: '429', retryAfterMs: 2000 }]);
  });

  it('after a 418, no request leaves for the whole ban', async () => {
    const { rest, refs } = client({ CONNECTOR_REST_POOL_CONNECTIONS: 3 });
    const to = openTimeAt('1m', Date.now());
    await warmUp(rest, refs.slice(0, 3), to);
    sim.faults.restLatency(100);
    sim.faults.restErrors(1, 418, 2);
    const pending = Promise.all(refs.slice(0, 6).map((s) => rest.fetchClosed(s, to - MIN, to)));
    await new Promise((r) => setTimeout(r, 300));
    expect(rest.stats().bannedUntil).toBeGreaterThan(Date.now() + 1000);
    const got = await pending;
    expect(got.every((g) => g.length === 1)).toBe(true);
    expect(sim.counters.rest418).toBe(1);
    expect(sim.counters.restInsideRetryAfter).toBe(0);
    expect(rest.stats().bannedUntil).toBeUndefined();
  });

  it('honours a Retry-After given as an HTTP-date, not a default minute', async () => {
    const { rest, refs, events } = client();
    const at = Math.ceil(Date.now() / 1000) * 1000 + 2000;
    sim.faults.restErrors(1, 429, new Date(at).toUTCString());
    const to = openTimeAt('1m', Date.now());
    const got = await rest.fetchClosed(refs[0]!, to - MIN, to);
    expect(got).toHaveLength(1);
    const rl = events.find((e) => e.type === 'ratelimit');
    expect(rl?.type === 'ratelimit' ? rl.retryAfterMs : undefined).toBeLessThanOrEqual(3000);
  });
});

describe('Binance REST: circuit breaker', () => {
  it('lets CONNECTOR_CIRCUIT_BREAKER_HALF_OPEN_CALLS trial requests through while half-open, and only those', async () => {
    const { rest, status, refs, events } = client({
      CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: 1,
      CONNECTOR_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: 1,
      CONNECTOR_CIRCUIT_BREAKER_HALF_OPEN_CALLS: 3,
    });
    const to = openTimeAt('1m', Date.now());
    sim.faults.restErrors(1, 500);
    await expect(rest.fetchClosed(refs[0]!, to - MIN, to)).rejects.toThrow(/breaker is open/);
    expect(rest.stats().breaker).toBe('open');
    await new Promise((r) => setTimeout(r, 1100));
    // Arrivals at the simulator by the time the breaker decides (closes) are its trials: the status
    // event is emitted synchronously when the last trial succeeds, before any waiting call can leave.
    let trials: number | undefined;
    const base = sim.counters.restRequests;
    status.on('breaker', (e) => {
      if (e.to === 'closed') trials = sim.counters.restRequests - base;
    });
    const got = await Promise.all(refs.slice(0, 8).map((s) => rest.fetchClosed(s, to - MIN, to)));
    expect(got.every((g) => g.length === 1)).toBe(true);
    expect(trials).toBe(3);
    expect(events.flatMap((e) => (e.type === 'breaker' ? [e.to] : []))).toEqual(['open', 'half-open', 'closed']);
  });
});
