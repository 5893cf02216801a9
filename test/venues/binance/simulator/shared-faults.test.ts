/**
 * Every fault, budget and counter of the simulator works on both profiles: the machinery is one piece
 * of code, and each test here runs once per profile against that profile's routes, paths, limits and
 * series. (faults.test.ts and rest-faults.test.ts keep their spot-only detail.)
 */
import { describe, expect, it } from 'vitest';
import { openTimeAt } from '../../../../src/core/intervals.ts';
import { klineAt, klineEventJson, openKlineAt, restRow } from '../../../../src/venues/binance/simulator/klines.ts';
import type { RestRow } from '../../../../src/venues/binance/simulator/klines.ts';
import type { SimulatorProfileId } from '../../../../src/venues/binance/simulator/server.ts';
import { TestClient, fastClock, klineEvents, pastInFlightGrace, restGet, sleep, useSimulator, waitUntil } from './helpers.ts';

interface ProfileCase {
  readonly profile: SimulatorProfileId;
  /** Inbound messages per second a socket may send. */
  readonly inbound: number;
  /** Weight of a klines request with limit=1. */
  readonly weightOfOne: number;
}

const CASES: readonly ProfileCase[] = [
  { profile: 'binance', inbound: 5, weightOfOne: 2 },
  { profile: 'binance-usdm', inbound: 10, weightOfOne: 1 },
];

const MIN = 60_000;
const T0 = 1_700_000_040_000; // a minute boundary
const NOW = T0 + 30_500;
/** 1m candles close every 100 ms of real time: both profiles have 1m (USD-M has no 1s). */
const FAST = 600;
const BTC = 'btcusdt@kline_1m';
const ETH = 'ethusdt@kline_1m';

describe.each(CASES)('shared faults on $profile', ({ profile, inbound, weightOfOne }) => {
  const { start: startSim, connect } = useSimulator();
  const start = async (options: Parameters<typeof startSim>[0] = {}) => {
    const s = await startSim({ profile, ...options });
    expect(s.profile).toBe(profile); // every test below runs on this profile's routes, paths and limits
    return s;
  };
  const klines = (s: { paths: { klines: string } }, query: string) => `${s.paths.klines}?${query}`;

  describe('WebSocket faults', () => {
    it('dropAll terminates every socket without a close frame', async () => {
      const s = await start();
      const a = await connect(`${s.wsUrl}/ws/${BTC}`);
      const b = await connect(`${s.wsUrl}/stream`);
      s.faults.dropAll();
      expect((await a.waitClosed()).code).toBe(1006);
      expect((await b.waitClosed()).code).toBe(1006);
      await waitUntil(() => s.sockets().length === 0, 2000, 'sessions gone');
    });

    it('closeAll sends close frames with the given code and reason', async () => {
      const s = await start();
      const a = await connect(`${s.wsUrl}/ws`);
      s.faults.closeAll(1008, 'Too many requests');
      expect(await a.waitClosed()).toEqual({ code: 1008, reason: 'Too many requests' });
      const b = await connect(`${s.wsUrl}/ws`);
      s.faults.closeAll();
      expect((await b.waitClosed()).code).toBe(1000);
    });

    it('stallSockets silences data and replies for the duration, then delivers the held replies and continues', async () => {
      const s = await start({ now: fastClock(FAST) });
      const c = await connect(`${s.wsUrl}/ws/${BTC}`);
      await waitUntil(() => klineEvents(c).length > 0, 3000, 'first event');
      s.faults.stallSockets(700);
      await sleep(30); // let an in-flight frame land
      const during = c.messages.length;
      c.send({ method: 'LIST_SUBSCRIPTIONS', id: 1 });
      await sleep(400);
      expect(c.messages.length).toBe(during);
      expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 2 })).toEqual({ result: [BTC], id: 2 });
      expect(c.messages.slice(during)).toContain(`{"result":["${BTC}"],"id":1}`);
      const after = klineEvents(c).length;
      await waitUntil(() => klineEvents(c).length > after, 3000, 'events again');
      expect(c.close).toBeUndefined();
    });

    it('stallStreams silences only the named streams', async () => {
      const s = await start({ now: fastClock(FAST) });
      const c = await connect(`${s.wsUrl}/stream?streams=${BTC}/${ETH}`);
      await waitUntil(() => new Set(klineEvents(c).map((e) => e.stream)).size === 2, 3000, 'both streams');
      s.faults.stallStreams([BTC], 600);
      await sleep(30);
      const from = klineEvents(c).length;
      await sleep(400);
      const streams = klineEvents(c).slice(from).map((e) => e.stream);
      expect(streams.length).toBeGreaterThan(0);
      expect(new Set(streams)).toEqual(new Set([ETH]));
      const after = klineEvents(c).length;
      await waitUntil(() => klineEvents(c).slice(after).some((e) => e.stream === BTC), 3000, 'btcusdt again');
    });

    it('refuseConnections answers the next upgrades with the given status', async () => {
      const s = await start();
      s.faults.refuseConnections(2, 503);
      expect(await TestClient.refusal(`${s.wsUrl}/ws`)).toBe(503);
      expect(await TestClient.refusal(`${s.wsUrl}/ws`)).toBe(503);
      await connect(`${s.wsUrl}/ws`);
      expect(s.counters).toMatchObject({ connectionsRefused: 2, connectionsOpened: 1 });
    });

    it('refuses upgrades past the connection-attempt budget with 429 and reports the busiest 5-minute window', async () => {
      const s = await start({ maxConnectionsPer5Min: 2 });
      await connect(`${s.wsUrl}/ws`);
      await connect(`${s.wsUrl}/stream`);
      expect(await TestClient.refusal(`${s.wsUrl}/ws`)).toBe(429);
      expect(s.counters).toMatchObject({ connectionsOpened: 2, connectionsRefused: 1, maxConnectionAttemptsPer5MinSeen: 2 });
      expect(s.counters.connectionTimestamps).toHaveLength(2);
    });

    it('closes a socket past its inbound budget with 1008 and reports the busiest second per socket', async () => {
      const s = await start();
      const polite = await connect(`${s.wsUrl}/ws`);
      for (let i = 1; i <= inbound; i++) polite.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
      await waitUntil(() => polite.messages.length === inbound, 3000, 'replies at the budget');
      const flood = await connect(`${s.wsUrl}/ws`);
      for (let i = 1; i <= inbound + 1; i++) flood.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
      expect(await flood.waitClosed()).toEqual({ code: 1008, reason: 'Too many requests' });
      expect(polite.close).toBeUndefined();
      expect(s.sockets()[0]).toMatchObject({ maxInboundPerSecond: inbound });
      expect(s.counters).toMatchObject({ closedByRateLimit: 1, maxInboundPerSecondSeen: inbound + 1 });
    });

    it('closeAfter closes every new connection with 1000 after the delay, until turned off', async () => {
      const s = await start();
      const old = await connect(`${s.wsUrl}/ws`);
      s.faults.closeAfter(200);
      const young = await connect(`${s.wsUrl}/ws`);
      expect((await young.waitClosed(3000)).code).toBe(1000);
      expect(old.close).toBeUndefined();
      s.faults.closeAfter(undefined);
      const spared = await connect(`${s.wsUrl}/ws`);
      await sleep(400);
      expect(spared.close).toBeUndefined();
    });

    it('cuts every connection at maxConnectionAgeMs (the 24 h mark, shortened) with 1000', async () => {
      const s = await start({ maxConnectionAgeMs: 300 });
      const a = await connect(`${s.wsUrl}/ws/${BTC}`);
      expect(await a.waitClosed(3000)).toEqual({ code: 1000, reason: 'Connection lifetime expired' });
      expect(s.counters.closedByAge).toBe(1);
    });

    it('garbage sends malformed and unknown frames and the simulator keeps serving', async () => {
      const s = await start();
      const c = await connect(`${s.wsUrl}/ws`);
      const before = s.counters.framesSent;
      s.faults.garbage(8);
      await waitUntil(() => c.messages.length >= 8, 3000, 'garbage');
      expect(c.messages.some((m) => m === 'this is not json')).toBe(true);
      const bad = c.messages.filter((m) => {
        try {
          JSON.parse(m);
          return false;
        } catch {
          return true;
        }
      });
      expect(bad.length).toBeGreaterThanOrEqual(3); // invalid JSON and truncated frames
      expect(c.messages.some((m) => m.includes('"e":"mysteryEvent"'))).toBe(true);
      expect(s.counters.framesSent - before).toBe(8);
      expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 1 })).toEqual({ result: [], id: 1 });
    });

    it('serverShutdown sends the raw event and the !serverShutdown envelope', async () => {
      const s = await start();
      const raw = await connect(`${s.wsUrl}/ws`);
      const combined = await connect(`${s.wsUrl}/stream`);
      s.faults.serverShutdown();
      await waitUntil(() => raw.messages.length > 0 && combined.messages.length > 0, 3000, 'notices');
      expect(raw.messages[0]).toMatch(/^\{"e":"serverShutdown","E":\d+\}$/);
      expect(combined.messages[0]).toMatch(/^\{"stream":"!serverShutdown","data":\{"e":"serverShutdown","E":\d+\}\}$/);
    });

    it('closeMidSubscribe closes the socket with 1011 instead of replying', async () => {
      const s = await start();
      s.faults.closeMidSubscribe(1);
      const a = await connect(`${s.wsUrl}/ws`);
      a.send({ method: 'SUBSCRIBE', params: [BTC], id: 1 });
      expect((await a.waitClosed()).code).toBe(1011);
      expect(a.messages).toEqual([]);
      const b = await connect(`${s.wsUrl}/ws`);
      expect(await b.request({ method: 'SUBSCRIBE', params: [BTC], id: 1 })).toEqual({ result: null, id: 1 });
    });

    it('hole removes candles from the WS stream and from REST, the profile’s own series around it', async () => {
      const now = fastClock(FAST);
      const s = await start({ now, openUpdateMs: 20 });
      const start0 = openTimeAt('1m', now()) + 3 * MIN;
      s.faults.hole('BTCUSDT', '1m', start0, start0 + 3 * MIN);
      const c = await connect(`${s.wsUrl}/ws/${BTC}`);
      await waitUntil(() => klineEvents(c).some((e) => e.data.k.x && e.data.k.t >= start0 + 4 * MIN), 5000, 'candles after the hole');
      expect(klineEvents(c).some((e) => e.data.k.t >= start0 && e.data.k.t < start0 + 3 * MIN)).toBe(false);
      const closed = klineEvents(c).filter((e) => e.data.k.x);
      expect(closed.map((e) => e.data.k.t)).toEqual(expect.arrayContaining([start0 - MIN, start0 + 3 * MIN]));
      for (const e of closed) expect(e.text).toBe(klineEventJson(klineAt('btcusdt', '1m', e.data.k.t, profile), e.data.E));
      const rows = (await restGet(s.restUrl, klines(s, `symbol=BTCUSDT&interval=1m&startTime=${start0 - MIN}&limit=3`))).body as RestRow[];
      expect(rows.map((r) => r[0])).toEqual([start0 - MIN, start0 + 3 * MIN, start0 + 4 * MIN]);
      expect(rows[0]).toEqual(restRow(klineAt('btcusdt', '1m', start0 - MIN, profile)));
    });
  });

  describe('REST faults and budgets', () => {
    it('restErrors serves 418 and 429 with Retry-After, the 403 WAF page and 500, then normal answers', async () => {
      const s = await start({ now: () => NOW });
      const q = klines(s, 'symbol=BTCUSDT&interval=1m&limit=1');
      s.faults.restErrors(1, 418, 7);
      const banned = await restGet(s.restUrl, q);
      expect([banned.status, banned.headers.get('retry-after')]).toEqual([418, '7']);
      s.faults.restErrors(1, 429, 3);
      const limited = await restGet(s.restUrl, q);
      expect([limited.status, limited.headers.get('retry-after')]).toEqual([429, '3']);
      expect(limited.body).toMatchObject({ code: -1003 });
      s.faults.restErrors(1, 403);
      const waf = await restGet(s.restUrl, q);
      expect(waf.status).toBe(403);
      expect(String(waf.body)).toContain('403 Forbidden');
      s.faults.restErrors(1, 500);
      expect((await restGet(s.restUrl, q)).status).toBe(500);
      s.faults.restErrors(1, 500);
      expect((await restGet(s.restUrl, s.paths.ping)).status).toBe(200); // injected failures only hit klines
      s.faults.reset();
      expect((await restGet(s.restUrl, q)).status).toBe(200);
      expect(s.counters).toMatchObject({ rest418: 1, rest429: 1 });
    });

    it('restLatency delays successful answers, while rejections and other paths go at once', async () => {
      const s = await start({ now: () => NOW });
      const q = klines(s, 'symbol=BTCUSDT&interval=1m&limit=1');
      s.faults.restLatency(300);
      const order: string[] = [];
      const slow = restGet(s.restUrl, q).then((r) => order.push(`klines ${r.status}`));
      await sleep(20);
      s.faults.restErrors(1, 429, 1);
      const rejected = restGet(s.restUrl, q).then((r) => order.push(`klines ${r.status}`));
      const ping = restGet(s.restUrl, s.paths.ping).then((r) => order.push(`ping ${r.status}`));
      await Promise.all([slow, rejected, ping]);
      expect(order.indexOf('klines 200')).toBe(2);
      expect(order.slice(0, 2).sort()).toEqual(['klines 429', 'ping 200']);
    });

    it('restLag answers as REST saw the market lag ms ago: older rows only, its newest one still partial', async () => {
      const s = await start({ now: () => NOW });
      s.faults.restLag(5 * MIN); // REST's view: T0 - 4.5 min
      const rows = (await restGet(s.restUrl, klines(s, `symbol=BTCUSDT&interval=1m&startTime=${T0 - 10 * MIN}&limit=100`))).body as RestRow[];
      expect(rows.map((r) => (r[0] - T0) / MIN)).toEqual([-10, -9, -8, -7, -6, -5]);
      expect(rows[4]).toEqual(restRow(klineAt('btcusdt', '1m', T0 - 6 * MIN, profile)));
      expect(rows[5]).toEqual(restRow(openKlineAt('btcusdt', '1m', T0 - 5 * MIN, 30_500 / MIN, profile)));
      s.faults.reset();
      const caughtUp = (await restGet(s.restUrl, klines(s, `symbol=BTCUSDT&interval=1m&startTime=${T0 - 10 * MIN}&limit=100`))).body as RestRow[];
      expect(caughtUp).toHaveLength(11);
    });

    it('answers 429 with Retry-After past the weight budget, and counts requests inside the announced window', async () => {
      const s = await start({ now: () => NOW, restWeightPerMinute: 3 * weightOfOne });
      const q = klines(s, 'symbol=BTCUSDT&interval=1m&limit=1');
      const used: (string | null)[] = [];
      for (let i = 0; i < 3; i++) used.push((await restGet(s.restUrl, q)).headers.get('x-mbx-used-weight-1m'));
      expect(used).toEqual([1, 2, 3].map((n) => String(n * weightOfOne)));
      const over = await restGet(s.restUrl, q);
      expect(over.status).toBe(429);
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(s.counters).toMatchObject({ rest429: 1, restWeightUsedMax1m: 3 * weightOfOne, restInsideRetryAfter: 0 });
      await pastInFlightGrace();
      expect((await restGet(s.restUrl, q)).status).toBe(429); // still over: a new 429, a new window
      await pastInFlightGrace();
      await restGet(s.restUrl, s.paths.ping);
      expect(s.counters).toMatchObject({ restInsideRetryAfter: 2, rest429: 3 });
    });

    it('bans the IP with 418 on every path once requests keep ignoring a Retry-After (restBanAfterViolations)', async () => {
      const s = await start({ now: () => NOW, restBanAfterViolations: 2, restBanSeconds: 120 });
      const q = klines(s, 'symbol=BTCUSDT&interval=1m&limit=1');
      s.faults.restErrors(1, 429, 30);
      expect((await restGet(s.restUrl, q)).status).toBe(429);
      await pastInFlightGrace();
      expect((await restGet(s.restUrl, s.paths.ping)).status).toBe(200); // ignores the Retry-After: counted, still answered
      await pastInFlightGrace();
      const banned = await restGet(s.restUrl, s.paths.ping); // the second violation: banned
      expect(banned.status).toBe(418);
      expect(Number(banned.headers.get('retry-after'))).toBeGreaterThan(100);
      expect((banned.body as { msg: string }).msg).toContain('IP banned until');
      expect((await restGet(s.restUrl, q)).status).toBe(418);
      expect(s.counters.rest418).toBe(2);
      s.faults.reset();
      expect((await restGet(s.restUrl, s.paths.ping)).status).toBe(200);
    });

    it('reset clears pending faults on both sides', async () => {
      const s = await start({ now: () => NOW });
      s.faults.refuseConnections(5);
      s.faults.closeMidSubscribe(5);
      s.faults.restErrors(5, 500);
      s.faults.restLag(10 * MIN);
      s.faults.reset();
      const c = await connect(`${s.wsUrl}/ws`);
      expect(await c.request({ method: 'SUBSCRIBE', params: [BTC], id: 1 })).toEqual({ result: null, id: 1 });
      const rows = (await restGet(s.restUrl, klines(s, 'symbol=BTCUSDT&interval=1m&limit=1'))).body as RestRow[];
      expect(rows.map((r) => r[0])).toEqual([T0]);
    });
  });
});
