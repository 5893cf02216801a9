/**
 * The Pionex simulator (the engine with the Pionex dialect) answers as Pionex's docs say
 * (exchanges.md §4): klines newest first up to an inclusive endTime, the newest row still forming,
 * Pionex's interval names and error shape, no WebSocket at all, and its rate model: 10 requests per
 * second per IP, then HTTP 429 and a 60 s ban that every further request extends by 10 s, with no
 * Retry-After. Against the real server on port 0.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { openTimeAt } from '../../../src/core/intervals.ts';
import type { VenueSimulator } from '../../../src/simulator/dialect.ts';
import { pionexSimulator } from '../../../src/venues/pionex/simulator/index.ts';
import { GARBAGE_BODIES } from '../../../src/venues/pionex/simulator/dialect.ts';
import { simulatorFor } from '../../../src/venues/simulators.ts';

const MIN = 60_000;
let sim: VenueSimulator;

beforeEach(async () => {
  sim = await pionexSimulator.start();
});
afterEach(async () => {
  await sim.close();
});

interface Kline {
  time: number;
  open: string;
  close: string;
  high: string;
  low: string;
  volume: string;
}

async function get(query: string): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${sim.restUrl}/api/v1/market/klines?${query}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

function klinesOf(body: Record<string, unknown>): Kline[] {
  return (body.data as { klines: Kline[] }).klines;
}

describe('Pionex simulator', () => {
  it('is registered under the daemon’s venue id and serves no WebSocket at all', async () => {
    expect(simulatorFor('pionex')).toBe(pionexSimulator);
    expect(sim.wsUrl).toBe('');
    const ws = new WebSocket(`${sim.restUrl.replace('http', 'ws')}/wsPub`);
    const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); }));
    expect(status).toBe(404);
    expect(sim.counters.connectionsOpened).toBe(0);
  });

  it('answers the newest `limit` rows up to an inclusive endTime, newest first, the newest one still forming, in Pionex’s body', async () => {
    const now = Date.now();
    const forming = openTimeAt('1m', now);
    const { status, body } = await get(`symbol=BTC_USDT&interval=1M&endTime=${forming}&limit=3`);
    expect(status).toBe(200);
    expect(body.result).toBe(true);
    expect(typeof body.timestamp).toBe('number');
    const rows = klinesOf(body);
    expect(rows.map((r) => r.time)).toEqual([forming, forming - MIN, forming - 2 * MIN]);
    expect(Object.keys(rows[0]!)).toEqual(['time', 'open', 'close', 'high', 'low', 'volume']);
    // Closed rows are the ground truth the relay must send; the forming one is partial.
    const truth = pionexSimulator.truth('BTC_USDT', '1m', forming - MIN);
    expect(rows[1]).toEqual({ time: forming - MIN, open: truth.o, close: truth.c, high: truth.h, low: truth.l, volume: truth.v });
    expect(truth).toMatchObject({ s: 'BTC_USDT', i: '1m', T: forming - 1, q: null, n: null, V: null, Q: null });
    // `60M` is an hour; without endTime, up to now; the default limit is 100.
    const hour = klinesOf((await get('symbol=ETH_USDT&interval=60M')).body);
    expect(hour).toHaveLength(100);
    expect(hour[0]?.time).toBe(openTimeAt('1h', Date.now()));
    expect((hour[0]?.time ?? 0) - (hour[1]?.time ?? 0)).toBe(60 * MIN);
  });

  it('refuses what Pionex refuses, in its error shape', async () => {
    const bad = await get('symbol=BTCUSDT&interval=1M');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ result: false, code: 'MARKET_INVALID_SYMBOL' });
    expect((await get('symbol=BTC_USDT&interval=1m')).body).toMatchObject({ result: false, code: 'MARKET_PARAMETER_ERROR' });
    expect((await get('symbol=BTC_USDT&interval=1M&limit=501')).status).toBe(400);
    const res = await fetch(`${sim.restUrl}/api/v3/klines?symbol=BTCUSDT&interval=1m`);
    expect(res.status).toBe(404);
  });

  it('leaves a hole absent from REST, and a lagging REST serves older rows only', async () => {
    const forming = openTimeAt('1m', Date.now());
    sim.faults.hole(pionexSimulator.seriesSymbol('SOL_USDT'), '1m', forming - 2 * MIN, forming - MIN);
    expect(klinesOf((await get(`symbol=SOL_USDT&interval=1M&endTime=${forming}&limit=3`)).body).map((r) => r.time)).toEqual([forming, forming - MIN, forming - 3 * MIN]);
    sim.faults.restLag(2 * MIN);
    expect(klinesOf((await get(`symbol=BTC_USDT&interval=1M&endTime=${forming}&limit=2`)).body).map((r) => r.time)).toEqual([forming - 2 * MIN, forming - 3 * MIN]);
  });

  it('turns the garbage fault into malformed klines bodies (HTTP 200), the venue having no socket to send garbage on', async () => {
    sim.faults.garbage(GARBAGE_BODIES.length);
    const bodies: string[] = [];
    for (let i = 0; i < GARBAGE_BODIES.length; i++) {
      const res = await fetch(`${sim.restUrl}/api/v1/market/klines?symbol=BTC_USDT&interval=1M&limit=1`);
      expect(res.status).toBe(200);
      bodies.push(await res.text());
    }
    expect(bodies).toEqual(GARBAGE_BODIES);
    // Then good answers again; reset drops what is still queued.
    expect((await get('symbol=BTC_USDT&interval=1M&limit=1')).body.result).toBe(true);
    sim.faults.garbage(5);
    sim.faults.reset();
    expect((await get('symbol=BTC_USDT&interval=1M&limit=1')).body.result).toBe(true);
  });

  it('answers the 11th request in a second with 429 and bans the IP for 60 s, 10 s more for every request inside the ban, with no Retry-After', async () => {
    const answers = await Promise.all(Array.from({ length: 11 }, () => get('symbol=BTC_USDT&interval=1M&limit=1')));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(10);
    const refused = answers.find((a) => a.status === 429);
    expect(refused?.body).toMatchObject({ result: false, code: 'TOO_MANY_REQUESTS' });
    expect(refused?.headers.get('retry-after')).toBeNull();
    expect(sim.counters.restLimited).toBe(1);
    // Inside the ban (past the engine's 50 ms in-flight grace): refused, and each refusal pushes the end 10 s further.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const until = async (): Promise<number> => {
      const a = await get('symbol=BTC_USDT&interval=1M&limit=1');
      expect(a.status).toBe(429);
      return Number(/until (\d+)/.exec(String(a.body.message))?.[1]);
    };
    const first = await until();
    // (The engine restarts its in-flight grace whenever a refusal lengthens the window.)
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await until();
    expect(second - first).toBeGreaterThanOrEqual(9_900);
    expect(first - Date.now()).toBeGreaterThan(60_000);
    expect(sim.counters.restBanned).toBe(2);
    // Every one of those was a request the daemon must never send.
    expect(sim.counters.restInsideRetryAfter).toBe(2);
  });
});
