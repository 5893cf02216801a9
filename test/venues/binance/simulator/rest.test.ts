import { afterEach, describe, expect, it } from 'vitest';
import { klineAt, openKlineAt, restRow } from '../../../../src/venues/binance/simulator/klines.ts';
import { BinanceSimulator } from '../../../../src/venues/binance/simulator/server.ts';
import type { SimulatorOptions } from '../../../../src/venues/binance/simulator/server.ts';

type Row = [number, string, string, string, string, string, number, string, number, string, string, string];

const MIN = 60_000;
const T0 = 1_700_000_040_000; // a minute boundary
const NOW = T0 + 30_500; // half-way through the candle opening at T0

let sim: BinanceSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(options: SimulatorOptions = {}): Promise<BinanceSimulator> {
  sim = await BinanceSimulator.start({ now: () => NOW, ...options });
  return sim;
}

async function get(s: BinanceSimulator, path: string): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${s.restUrl}${path}`);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    // non-JSON bodies (the 403 WAF page) stay text
  }
  return { status: res.status, body, headers: res.headers };
}

describe('simulator REST /api/v3/klines', () => {
  it('returns the most recent 500 rows by default, the last one still forming', async () => {
    const s = await start();
    const { status, body, headers } = await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m');
    expect(status).toBe(200);
    expect(headers.get('x-mbx-used-weight-1m')).toBe('2');
    const rows = body as Row[];
    expect(rows).toHaveLength(500);
    expect(rows[499]?.[0]).toBe(T0);
    expect(rows[0]?.[0]).toBe(T0 - 499 * MIN);
    expect(rows[499]).toEqual(restRow(openKlineAt('btcusdt', '1m', T0, 30_500 / MIN)));
    expect(rows[498]).toEqual(restRow(klineAt('btcusdt', '1m', T0 - MIN)));
    for (let i = 1; i < rows.length; i++) expect(rows[i]?.[0]).toBe((rows[i - 1]?.[0] ?? 0) + MIN);
  });

  it('pages forward from startTime, backward from endTime, and bounds both', async () => {
    const s = await start();
    const fwd = (await get(s, `/api/v3/klines?symbol=ETHUSDT&interval=1m&startTime=${T0 - 10 * MIN + 1}&limit=3`)).body as Row[];
    // startTime inside a candle: the first row is the next candle (open time >= startTime)
    expect(fwd.map((r) => r[0])).toEqual([T0 - 9 * MIN, T0 - 8 * MIN, T0 - 7 * MIN]);
    expect(fwd[0]).toEqual(restRow(klineAt('ETHUSDT', '1m', T0 - 9 * MIN)));

    const back = (await get(s, `/api/v3/klines?symbol=ETHUSDT&interval=1m&endTime=${T0 - 5 * MIN + 7}&limit=2`)).body as Row[];
    expect(back.map((r) => r[0])).toEqual([T0 - 6 * MIN, T0 - 5 * MIN]);

    const both = (await get(s, `/api/v3/klines?symbol=ETHUSDT&interval=1m&startTime=${T0 - 4 * MIN}&endTime=${T0 - 2 * MIN}&limit=1000`)).body as Row[];
    expect(both.map((r) => r[0])).toEqual([T0 - 4 * MIN, T0 - 3 * MIN, T0 - 2 * MIN]);

    const future = (await get(s, `/api/v3/klines?symbol=ETHUSDT&interval=1m&startTime=${T0 + 5 * MIN}`)).body as Row[];
    expect(future).toEqual([]);

    const tail = (await get(s, `/api/v3/klines?symbol=ETHUSDT&interval=1m&startTime=${T0 - MIN}`)).body as Row[];
    expect(tail.map((r) => r[0])).toEqual([T0 - MIN, T0]);
    expect(tail[1]?.[6]).toBe(T0 + MIN - 1);
  });

  it('skips holes without counting them towards the limit', async () => {
    const s = await start();
    s.faults.hole('btcusdt', '1m', T0 - 6 * MIN, T0 - 3 * MIN);
    const fwd = (await get(s, `/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=${T0 - 8 * MIN}&limit=4`)).body as Row[];
    expect(fwd.map((r) => r[0])).toEqual([T0 - 8 * MIN, T0 - 7 * MIN, T0 - 3 * MIN, T0 - 2 * MIN]);
    const back = (await get(s, `/api/v3/klines?symbol=BTCUSDT&interval=1m&endTime=${T0 - 2 * MIN}&limit=3`)).body as Row[];
    expect(back.map((r) => r[0])).toEqual([T0 - 7 * MIN, T0 - 3 * MIN, T0 - 2 * MIN]);
    // other intervals and symbols are untouched
    const other = (await get(s, `/api/v3/klines?symbol=ETHUSDT&interval=1m&startTime=${T0 - 5 * MIN}&limit=1`)).body as Row[];
    expect(other.map((r) => r[0])).toEqual([T0 - 5 * MIN]);
  });

  it('rejects bad parameters with Binance error codes', async () => {
    const s = await start();
    const cases: [string, number, number][] = [
      ['interval=1m', 400, -1102],
      ['symbol=BTCUSDT', 400, -1102],
      ['symbol=BTCUSDT&interval=7m', 400, -1120],
      ['symbol=btc%22usdt&interval=1m', 400, -1121],
      ['symbol=BTCUSDT&interval=1m&limit=1001', 400, -1130],
      ['symbol=BTCUSDT&interval=1m&limit=0', 400, -1130],
      ['symbol=BTCUSDT&interval=1m&startTime=abc', 400, -1100],
      [`symbol=BTCUSDT&interval=1m&startTime=${T0}&endTime=${T0 - 1}`, 400, -1023],
    ];
    for (const [query, status, code] of cases) {
      const res = await get(s, `/api/v3/klines?${query}`);
      expect({ query, status: res.status, code: (res.body as { code: number }).code }).toEqual({ query, status, code });
      expect(typeof (res.body as { msg: unknown }).msg).toBe('string');
    }
    expect((await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000')).body).toHaveLength(1000);
  });

  it('counts weight per minute and answers 429 with Retry-After past the budget', async () => {
    const s = await start({ restWeightPerMinute: 6 });
    const used: (string | null)[] = [];
    for (let i = 0; i < 3; i++) used.push((await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1')).headers.get('x-mbx-used-weight-1m'));
    expect(used).toEqual(['2', '4', '6']);
    const over = await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1');
    expect(over.status).toBe(429);
    expect((over.body as { code: number }).code).toBe(-1003);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(s.counters.rest429).toBe(1);
    expect(s.counters.restWeightUsedMax1m).toBe(6);
    expect(s.counters.restRequests).toBe(4);
  });

  it('serves injected failures first: 418 and 429 with Retry-After, 403 WAF page, 500', async () => {
    const s = await start();
    s.faults.restErrors(2, 418, 7);
    const a = await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m');
    const b = await get(s, '/api/v3/klines?symbol=nonsense');
    expect([a.status, b.status]).toEqual([418, 418]);
    expect(a.headers.get('retry-after')).toBe('7');
    expect(s.counters.rest418).toBe(2);
    expect((await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1')).status).toBe(200);

    s.faults.restErrors(1, 429, 3);
    const c = await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m');
    expect([c.status, c.headers.get('retry-after')]).toEqual([429, '3']);
    expect(s.counters.rest429).toBe(1);

    s.faults.restErrors(1, 403);
    const d = await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m');
    expect(d.status).toBe(403);
    expect(String(d.body)).toContain('403');

    s.faults.restErrors(1, 500);
    expect((await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m')).status).toBe(500);
    // injected failures only hit klines
    s.faults.restErrors(1, 500);
    expect((await get(s, '/api/v3/ping')).status).toBe(200);
    s.faults.reset();
    expect((await get(s, '/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1')).status).toBe(200);
  });

  it('answers ping, time and unknown paths', async () => {
    const s = await start();
    expect(await get(s, '/api/v3/ping')).toMatchObject({ status: 200, body: {} });
    expect(await get(s, '/api/v3/time')).toMatchObject({ status: 200, body: { serverTime: NOW } });
    const nf = await get(s, '/api/v3/nope');
    expect(nf.status).toBe(404);
    expect(nf.body).toMatchObject({ code: -1 });
  });
});
