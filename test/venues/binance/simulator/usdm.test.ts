/**
 * The USD-M futures profile: what differs from spot (routes, the silent legacy paths, 10 messages/s,
 * pong rules, /fapi/v1/klines limits and weights, its own series). What both profiles share (every
 * fault, budgets, counters) is in shared-faults.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { openTimeAt } from '../../../../src/core/intervals.ts';
import { klineAt, klineEventJson, openKlineAt, restRow } from '../../../../src/venues/binance/simulator/klines.ts';
import type { RestRow } from '../../../../src/venues/binance/simulator/klines.ts';
import { TestClient, fastClock, klineEvents, pastInFlightGrace, restGet, useSimulator, waitUntil } from './helpers.ts';

const sim = useSimulator();
const { connect } = sim;
async function start(options: Parameters<typeof sim.start>[0]): ReturnType<typeof sim.start> {
  const s = await sim.start(options);
  expect(s.profile).toBe('binance-usdm');
  return s;
}

const MIN = 60_000;
const T0 = 1_700_000_040_000; // a minute boundary
const NOW = T0 + 30_500; // half-way through the candle opening at T0
/** 1m candles close every 100 ms of real time. */
const FAST = 600;

const usdm = { profile: 'binance-usdm' } as const;

function closedKlines(c: TestClient): ReturnType<typeof klineEvents> {
  return klineEvents(c).filter((e) => e.data.k.x);
}

describe('USD-M simulator: WebSocket routes', () => {
  it('delivers klines on every /market route: /market/stream?streams=, /market/ws/<s>, and bare /market/ws and /market/stream after SUBSCRIBE', async () => {
    const s = await start({ ...usdm, now: fastClock(FAST) });
    expect(s.wsUrl).toBe(`${s.wsRootUrl}/market`);
    const combined = await connect(`${s.wsUrl}/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m`);
    const raw = await connect(`${s.wsUrl}/ws/btcusdt@kline_1m`);
    const bareWs = await connect(`${s.wsUrl}/ws`);
    const bareStream = await connect(`${s.wsUrl}/stream`);
    expect(await bareWs.request({ method: 'SUBSCRIBE', params: ['ethusdt@kline_1m'], id: 1 })).toEqual({ result: null, id: 1 });
    expect(await bareStream.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 'a1' })).toEqual({ result: null, id: 'a1' });
    const all = [combined, raw, bareWs, bareStream];
    await waitUntil(() => all.every((c) => closedKlines(c).length >= 2), 5000, 'closed candles on every route');
    await waitUntil(() => new Set(klineEvents(combined).map((e) => e.stream)).size === 2, 5000, 'both combined streams');
    for (const c of all) {
      for (const e of closedKlines(c)) {
        // byte-for-byte the USD-M ground truth, in the envelope when the socket is combined
        const payload = klineEventJson(klineAt(e.data.s, '1m', e.data.k.t, 'binance-usdm'), e.data.E);
        expect(e.text).toBe(e.stream === undefined ? payload : `{"stream":"${e.stream}","data":${payload}}`);
      }
    }
    expect(klineEvents(combined).every((e) => e.stream !== undefined)).toBe(true);
    expect(klineEvents(bareStream).every((e) => e.stream === 'btcusdt@kline_1m')).toBe(true);
    expect(klineEvents(raw).every((e) => e.stream === undefined)).toBe(true);
    expect(s.sockets().every((x) => x.delivers)).toBe(true);
  });

  it('the legacy root paths and /public accept connections and SUBSCRIBE, then send no kline frames while /market does', async () => {
    const s = await start({ ...usdm, now: fastClock(FAST) });
    const silent = [
      await connect(`${s.wsRootUrl}/ws/btcusdt@kline_1m`),
      await connect(`${s.wsRootUrl}/stream?streams=btcusdt@kline_1m`),
      await connect(`${s.wsRootUrl}/ws`),
      await connect(`${s.wsRootUrl}/stream`),
      await connect(`${s.wsRootUrl}/public/ws/btcusdt@kline_1m`),
    ];
    for (const [i, c] of silent.entries()) {
      // binance/binance-public-data#472: the acknowledgement arrives, the data never does
      expect(await c.request({ method: 'SUBSCRIBE', params: ['ethusdt@kline_1m'], id: i + 1 })).toEqual({ result: null, id: i + 1 });
    }
    const market = await connect(`${s.wsUrl}/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m`);
    await waitUntil(() => closedKlines(market).length >= 6, 5000, 'closed candles on /market');
    for (const c of silent) {
      expect(klineEvents(c)).toEqual([]);
      expect(c.messages).toHaveLength(1); // the SUBSCRIBE reply only
      expect(c.close).toBeUndefined();
    }
    const listed = await silent[2]!.request({ method: 'LIST_SUBSCRIPTIONS', id: 9 });
    expect(listed).toEqual({ result: ['ethusdt@kline_1m'], id: 9 });
    const byPath = new Map(s.sockets().map((x) => [x.path, x.delivers]));
    expect(byPath.get('/ws/btcusdt@kline_1m')).toBe(false);
    expect(byPath.get('/public/ws/btcusdt@kline_1m')).toBe(false);
    expect(byPath.get('/market/stream')).toBe(true);
    // the private route and anything else are not served
    expect(await TestClient.refusal(`${s.wsRootUrl}/private/ws`)).toBe(404);
    expect(await TestClient.refusal(`${s.wsRootUrl}/market/nowhere`)).toBe(404);
  });

  it('has no 1s klines: a 1s stream is acknowledged and stays silent, REST answers -1120', async () => {
    const s = await start({ ...usdm, now: fastClock(FAST) });
    const c = await connect(`${s.wsUrl}/ws/btcusdt@kline_1s`);
    expect(await c.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 1 })).toEqual({ result: null, id: 1 });
    await waitUntil(() => closedKlines(c).length >= 3, 5000, 'closed 1m candles');
    expect(new Set(klineEvents(c).map((e) => e.data.k.i))).toEqual(new Set(['1m']));
    const rest = await restGet(s.restUrl, '/fapi/v1/klines?symbol=BTCUSDT&interval=1s');
    expect([rest.status, (rest.body as { code: number }).code]).toEqual([400, -1120]);
    expect(() => klineAt('btcusdt', '1s', T0, 'binance-usdm')).toThrow(RangeError);
  });
});

describe('USD-M simulator: connection limits', () => {
  it('closes a client that sends an 11th message within a second with 1008 "Too many requests"', async () => {
    const s = await start(usdm);
    const c = await connect(`${s.wsUrl}/ws`);
    for (let i = 1; i <= 11; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
    expect(await c.waitClosed()).toEqual({ code: 1008, reason: 'Too many requests' });
    expect(c.messages).toHaveLength(10); // the eleventh was never answered
    expect(s.counters.closedByRateLimit).toBe(1);
    expect(s.counters.maxInboundPerSecondSeen).toBe(11);
  });

  it('keeps a client that sends 10 messages in a second (spot would have closed it at 6)', async () => {
    const s = await start(usdm);
    const c = await connect(`${s.wsUrl}/ws`);
    for (let i = 1; i <= 10; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
    await waitUntil(() => c.messages.length === 10, 3000, 'ten replies');
    expect(c.close).toBeUndefined();
    expect(s.sockets()[0]).toMatchObject({ inboundTotal: 10, maxInboundPerSecond: 10 });
    expect(s.counters.closedByRateLimit).toBe(0);
  });

  it('counts pings and pongs against the 10 messages per second', async () => {
    const s = await start(usdm);
    const c = await connect(`${s.wsUrl}/ws`);
    for (let i = 0; i < 6; i++) c.ws.ping();
    for (let i = 0; i < 5; i++) c.ws.pong();
    expect((await c.waitClosed()).code).toBe(1008);
    expect(s.counters.controlMessages).toBe(11);
  });

  it('caps a connection at 1024 streams: 1025 in the URL are refused with 400, a SUBSCRIBE past 1024 gets error 4', async () => {
    // long open-update cadence: 1024 streams stay quiet, this test is about the count
    const s = await start({ ...usdm, openUpdateMs: 600_000 });
    const names = Array.from({ length: 1025 }, (_, i) => `${i.toString(36).padStart(2, '0')}@kline_1m`);
    expect(await TestClient.refusal(`${s.wsUrl}/stream?streams=${names.join('/')}`)).toBe(400);
    const c = await connect(`${s.wsUrl}/stream?streams=${names.slice(0, 1000).join('/')}`);
    expect(await c.request({ method: 'SUBSCRIBE', params: names.slice(990, 1024), id: 1 })).toEqual({ result: null, id: 1 });
    expect(s.sockets()[0]?.streams).toHaveLength(1024);
    expect(await c.request({ method: 'SUBSCRIBE', params: [names[1024]!], id: 2 })).toMatchObject({ error: { code: 4, msg: 'Too many subscriptions' }, id: 2 });
    expect(await c.request({ method: 'SUBSCRIBE', params: [names[0]!], id: 3 })).toEqual({ result: null, id: 3 }); // already there: no new stream
    expect(s.sockets()[0]?.streams).toHaveLength(1024);
  });

  it('pings every pingIntervalMs and keeps a client alive on unsolicited pongs alone (spot requires the echo)', async () => {
    const s = await start({ ...usdm, pingIntervalMs: 300, pongTimeoutMs: 1500 });
    const deaf = await connect(`${s.wsUrl}/ws`, false);
    const unsolicited = await connect(`${s.wsUrl}/ws`, false);
    // 5 pongs a second, none of them an echo: under the 10/s budget, and enough "to maintain the connection"
    const timer = setInterval(() => {
      if (unsolicited.ws.readyState === unsolicited.ws.OPEN) unsolicited.ws.pong('');
    }, 200);
    try {
      expect((await deaf.waitClosed(6000)).code).toBe(1006); // terminated: no pong within the deadline
      expect(deaf.pings.length).toBeGreaterThan(0);
      expect(unsolicited.close).toBeUndefined();
      expect(unsolicited.pings.length).toBeGreaterThan(0);
      expect(s.sockets()).toHaveLength(1);
    } finally {
      clearInterval(timer);
    }
  });
});

describe('USD-M simulator: REST /fapi/v1/klines', () => {
  it('pages 1500 rows at a time oldest first, the last row still forming, from the USD-M series (not spot’s)', async () => {
    const s = await start({ ...usdm, now: () => NOW });
    const latest = await restGet(s.restUrl, '/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1500');
    expect(latest.status).toBe(200);
    const rows = latest.body as RestRow[];
    expect(rows).toHaveLength(1500);
    expect(rows[0]?.[0]).toBe(T0 - 1499 * MIN);
    expect(rows[1499]).toEqual(restRow(openKlineAt('btcusdt', '1m', T0, 30_500 / MIN, 'binance-usdm')));
    expect(rows[1498]).toEqual(restRow(klineAt('btcusdt', '1m', T0 - MIN, 'binance-usdm')));
    expect(rows[1498]).not.toEqual(restRow(klineAt('btcusdt', '1m', T0 - MIN)));

    // forward paging from 3000 candles back: two full pages, then the forming one
    const from = T0 - 3000 * MIN;
    const pages: RestRow[][] = [];
    let next = from;
    for (let i = 0; i < 3; i++) {
      const page = (await restGet(s.restUrl, `/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime=${next}&limit=1500`)).body as RestRow[];
      pages.push(page);
      next = (page.at(-1)?.[0] ?? 0) + 1;
    }
    expect(pages.map((p) => p.length)).toEqual([1500, 1500, 1]);
    const times = pages.flat().map((r) => r[0]);
    expect(times).toEqual(Array.from({ length: 3001 }, (_, i) => from + i * MIN));
    expect(pages[2]?.[0]).toEqual(rows[1499]);
  });

  it('answers past-the-maximum and malformed queries with Binance error codes', async () => {
    const s = await start({ ...usdm, now: () => NOW });
    const cases: [string, number][] = [
      ['symbol=BTCUSDT&interval=1m&limit=1501', -1130],
      ['symbol=BTCUSDT&interval=1m&limit=0', -1130],
      ['symbol=BTCUSDT&interval=7m', -1120],
      ['interval=1m', -1102],
      [`symbol=BTCUSDT&interval=1m&startTime=${T0}&endTime=${T0 - 1}`, -1023],
    ];
    for (const [query, code] of cases) {
      const res = await restGet(s.restUrl, `/fapi/v1/klines?${query}`);
      expect({ query, status: res.status, code: (res.body as { code: number }).code }).toEqual({ query, status: 400, code });
    }
    expect((await restGet(s.restUrl, '/fapi/v1/klines?symbol=BTCUSDT&interval=1M&limit=2')).status).toBe(200);
    // spot's paths are not USD-M's
    expect((await restGet(s.restUrl, '/api/v3/klines?symbol=BTCUSDT&interval=1m')).status).toBe(404);
    expect(await restGet(s.restUrl, '/fapi/v1/ping')).toMatchObject({ status: 200, body: {} });
    expect(await restGet(s.restUrl, '/fapi/v1/time')).toMatchObject({ status: 200, body: { serverTime: NOW } });
  });

  it('weighs each klines request by its limit ([1,100) 1, [100,500) 2, [500,1000] 5, >1000 10) and reports the total in X-MBX-USED-WEIGHT-1M', async () => {
    const s = await start({ ...usdm, now: () => NOW });
    const limits = ['1', '99', '100', '499', '500', '1000', '1001', '1500', undefined];
    const weights = [1, 1, 2, 2, 5, 5, 10, 10, 5]; // no limit: the default 500
    const seen: number[] = [];
    for (const limit of limits) {
      const res = await restGet(s.restUrl, `/fapi/v1/klines?symbol=BTCUSDT&interval=1m${limit === undefined ? '' : `&limit=${limit}`}`);
      expect(res.status).toBe(200);
      seen.push(Number(res.headers.get('x-mbx-used-weight-1m')));
    }
    let total = 0;
    expect(seen).toEqual(weights.map((w) => (total += w)));
    expect(s.counters.restWeightUsedMax1m).toBe(total);
    // a request refused for its limit still weighs by it; ping weighs 1
    await restGet(s.restUrl, '/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1501');
    expect((await restGet(s.restUrl, '/fapi/v1/ping')).headers.get('x-mbx-used-weight-1m')).toBe(String(total + 10 + 1));
  });

  it('answers 429 with Retry-After once 2400 weight is used within a minute, and counts requests that ignore it', async () => {
    const s = await start({ ...usdm, now: () => NOW });
    let last = '';
    for (let i = 0; i < 240; i++) {
      const res = await restGet(s.restUrl, '/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1500');
      expect(res.status).toBe(200);
      last = res.headers.get('x-mbx-used-weight-1m') ?? '';
    }
    expect(last).toBe('2400');
    const over = await restGet(s.restUrl, '/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1');
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ code: -1003 });
    expect((over.body as { msg: string }).msg).toContain('2400 request weight per 1 MINUTE');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(over.headers.get('x-mbx-used-weight-1m')).toBe('2400');
    expect(s.counters).toMatchObject({ rest429: 1, restWeightUsedMax1m: 2400, restInsideRetryAfter: 0 });
    await pastInFlightGrace();
    expect((await restGet(s.restUrl, '/fapi/v1/ping')).status).toBe(429);
    expect(s.counters.restInsideRetryAfter).toBe(1);
  });
});

describe('USD-M simulator: ground truth', () => {
  it('has its own deterministic series, printed at tick and step precision, chained like spot’s', () => {
    const k = klineAt('btcusdt', '1m', T0, 'binance-usdm');
    expect(k).toEqual(klineAt('BTCUSDT', '1m', T0, 'binance-usdm'));
    expect(k).not.toEqual(klineAt('btcusdt', '1m', T0));
    for (const p of [k.o, k.c, k.h, k.l]) expect(p).toMatch(/^\d+\.\d{2}$/); // BTCUSDT ticks: 0.01
    for (const v of [k.v, k.V]) expect(v).toMatch(/^\d+\.\d{3}$/);
    for (const q of [k.q, k.Q]) expect(q).toMatch(/^\d+\.\d{5}$/);
    expect(klineAt('xrpusdt', '1m', T0, 'binance-usdm').o).toMatch(/^0\.\d{6}$/); // below 1: 6 decimals
    let prev = k;
    for (let i = 1; i < 50; i++) {
      const next = klineAt('btcusdt', '1m', T0 + i * MIN, 'binance-usdm');
      expect(next.o).toBe(prev.c);
      expect(next.f).toBe(prev.L + 1);
      expect(Number(next.h)).toBeGreaterThanOrEqual(Math.max(Number(next.o), Number(next.c)));
      expect(Number(next.V)).toBeLessThanOrEqual(Number(next.v));
      prev = next;
    }
    const hour = klineAt('btcusdt', '1h', openTimeAt('1h', T0), 'binance-usdm');
    expect(hour.o).toBe(klineAt('btcusdt', '1m', openTimeAt('1h', T0), 'binance-usdm').o);
    const partial = openKlineAt('btcusdt', '1m', T0, 0.5, 'binance-usdm');
    expect(partial.x).toBe(false);
    expect(partial.o).toBe(k.o);
    expect(Number(partial.v)).toBeLessThanOrEqual(Number(k.v));
  });
});
