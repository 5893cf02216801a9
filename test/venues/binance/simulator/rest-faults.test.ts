import { afterEach, describe, expect, it } from 'vitest';
import { klineAt, openKlineAt, restRow } from '../../../../src/venues/binance/simulator/klines.ts';
import { BinanceSimulator } from '../../../../src/venues/binance/simulator/server.ts';

type Row = [number, string, string, string, string, string, number, string, number, string, string, string];

const T0 = 1_700_000_040_000; // a minute boundary
const NOW = T0 + 30_500;

let sim: BinanceSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(): Promise<BinanceSimulator> {
  sim = await BinanceSimulator.start({ now: () => NOW });
  return sim;
}

async function get(s: BinanceSimulator, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${s.restUrl}${path}`);
  const text = await res.text();
  return { status: res.status, body: text.startsWith('[') || text.startsWith('{') ? (JSON.parse(text) as unknown) : text };
}

/** Requests arriving just after a rejection may have been on the wire already: the simulator excuses those. */
const pastInFlightGrace = () => new Promise((r) => setTimeout(r, 80));

describe('simulator REST faults', () => {
  it('restLag: answers klines as REST saw them lag ms ago (older rows only, its newest one still partial)', async () => {
    const s = await start();
    s.faults.restLag(20_000); // REST's view: T0 + 10.5 s
    const rows = (await get(s, `/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime=${T0}&limit=1000`)).body as Row[];
    expect(rows.map((r) => (r[0] - T0) / 1000)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(rows[9]).toEqual(restRow(klineAt('btcusdt', '1s', T0 + 9000)));
    expect(rows[10]).toEqual(restRow(openKlineAt('btcusdt', '1s', T0 + 10_000, 0.5)));
    s.faults.reset();
    const caughtUp = (await get(s, `/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime=${T0}&limit=1000`)).body as Row[];
    expect(caughtUp).toHaveLength(31);
  });

  it('restLatency: successful answers wait, rejections and other paths go at once', async () => {
    const s = await start();
    s.faults.restLatency(300);
    const order: string[] = [];
    const slow = get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1').then((r) => order.push(`klines ${r.status}`));
    await new Promise((r) => setTimeout(r, 20));
    s.faults.restErrors(1, 429, 1);
    const rejected = get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1').then((r) => order.push(`klines ${r.status}`));
    const ping = get(s, '/api/v3/ping').then((r) => order.push(`ping ${r.status}`));
    await Promise.all([slow, rejected, ping]);
    expect(order.indexOf('klines 200')).toBe(2);
    expect(order.slice(0, 2).sort()).toEqual(['klines 429', 'ping 200']);
  });

  it('counts every request that arrives inside an announced Retry-After window (after the in-flight grace), and none after it', async () => {
    const s = await start();
    s.faults.restErrors(1, 429, 1);
    expect((await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1')).status).toBe(429);
    expect(s.counters.restInsideRetryAfter).toBe(0); // the 429 itself came before its window
    await pastInFlightGrace();
    await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1');
    await get(s, '/api/v3/ping');
    expect(s.counters.restInsideRetryAfter).toBe(2);
    await new Promise((r) => setTimeout(r, 1050));
    await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1');
    expect(s.counters.restInsideRetryAfter).toBe(2);
  });

  it('announces a 418 ban as a window too, and reads a Retry-After given as an HTTP-date', async () => {
    const s = await start();
    // NOW is frozen; the date (whole seconds, as HTTP-dates are) is 1.5 s past it.
    const at = Math.floor(NOW / 1000) * 1000 + 2000;
    s.faults.restErrors(1, 418, new Date(at).toUTCString());
    const banned = await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1');
    expect(banned.status).toBe(418);
    expect(JSON.stringify(banned.body)).toContain(`banned until ${at}`);
    await pastInFlightGrace();
    await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1');
    expect(s.counters.restInsideRetryAfter).toBe(1);
  });
});
