import { describe, expect, it } from 'vitest';
import { klineAt, klineEventJson, restRow } from '../../../../src/venues/binance/simulator/klines.ts';
import { TestClient, fastClock, klineEvents, sleep, useSimulator, waitUntil } from './helpers.ts';

const { start, connect } = useSimulator();



describe('simulator WebSocket streams', () => {
  it('serves combined streams with envelopes and raw streams with bare payloads', async () => {
    const s = await start();
    const combined = await connect(`${s.wsUrl}/stream?streams=btcusdt@kline_1s/ethusdt@kline_1m`);
    const raw = await connect(`${s.wsUrl}/ws/btcusdt@kline_1s/ethusdt@kline_1m`);
    await waitUntil(() => new Set(klineEvents(combined).map((e) => e.stream)).size === 2, 3000, 'both combined streams');
    await waitUntil(() => new Set(klineEvents(raw).map((e) => e.data.s)).size === 2, 3000, 'both raw streams');
    for (const e of klineEvents(combined)) {
      const name = `${e.data.s.toLowerCase()}@kline_${e.data.k.i}`;
      expect(e.stream).toBe(name);
      expect(e.text.startsWith(`{"stream":"${name}","data":{"e":"kline","E":`)).toBe(true);
    }
    for (const e of klineEvents(raw)) {
      expect(e.stream).toBeUndefined();
      expect(e.text.startsWith('{"e":"kline","E":')).toBe(true);
    }
    expect(s.sockets().map((x) => x.combined).sort()).toEqual([false, true]);
  });

  it('sends exactly one closed event per candle, equal to klineAt and to the REST row', async () => {
    const s = await start({ now: fastClock(10) });
    const c = await connect(`${s.wsUrl}/ws/btcusdt@kline_1s`);
    const closed = (): ReturnType<typeof klineEvents> => klineEvents(c).filter((e) => e.data.k.x);
    await waitUntil(() => closed().length >= 12, 5000, '12 closed candles');
    const got = closed();
    for (let i = 1; i < got.length; i++) expect(got[i]?.data.k.t).toBe((got[i - 1]?.data.k.t ?? 0) + 1000);
    for (const e of got) {
      // byte-for-byte: the frame is exactly the ground truth serialized with its own E
      expect(e.text).toBe(klineEventJson(klineAt('btcusdt', '1s', e.data.k.t), e.data.E));
      expect(e.data.E).toBeGreaterThan(e.data.k.T);
    }
    const first = got[0]!.data.k;
    const res = await fetch(`${s.restUrl}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime=${first.t}&limit=3`);
    const rows = (await res.json()) as unknown[];
    expect(rows[0]).toEqual(restRow(klineAt('btcusdt', '1s', first.t)));
    expect(rows[0]).toEqual([first.t, first.o, first.h, first.l, first.c, first.v, first.T, expect.any(String), first.n, expect.any(String), expect.any(String), '0']);
    // open updates of a candle never go backwards and never follow its closed event
    const seen = new Map<number, { n: number; closed: boolean }>();
    for (const e of klineEvents(c)) {
      const prev = seen.get(e.data.k.t);
      if (prev !== undefined) {
        expect(prev.closed).toBe(false);
        expect(e.data.k.n).toBeGreaterThanOrEqual(prev.n);
      }
      seen.set(e.data.k.t, { n: e.data.k.n, closed: e.data.k.x });
    }
    expect(s.counters.closedKlinesSent).toBeGreaterThanOrEqual(12);
    expect(s.counters.klineEventsSent).toBeGreaterThan(s.counters.closedKlinesSent);
  });

  it('announces a closed candle after its close time and before the next candle closes (real clock)', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/ws/ethusdt@kline_1s`);
    await waitUntil(() => klineEvents(c).some((e) => e.data.k.x), 3000, 'a closed candle');
    const e = klineEvents(c).find((x) => x.data.k.x)!;
    // E is the send time: after the close, within the next candle (a bound on correctness, not speed)
    expect(e.data.E - e.data.k.T).toBeGreaterThan(0);
    expect(e.data.E - e.data.k.T).toBeLessThan(1000);
  });

  it('answers control messages like Binance and switches envelopes with SET_PROPERTY', async () => {
    const s = await start({ maxInboundPerSecond: 100 });
    const c = await connect(`${s.wsUrl}/ws`);
    expect(await c.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1s', 'ethusdt@kline_1s'], id: 1 })).toEqual({ result: null, id: 1 });
    expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 'abc-2' })).toEqual({ result: ['btcusdt@kline_1s', 'ethusdt@kline_1s'], id: 'abc-2' });
    expect(await c.request({ method: 'GET_PROPERTY', params: ['combined'], id: 3 })).toEqual({ result: false, id: 3 });
    await waitUntil(() => klineEvents(c).length > 0, 3000, 'raw events');
    expect(klineEvents(c).every((e) => e.stream === undefined)).toBe(true);
    expect(await c.request({ method: 'SET_PROPERTY', params: ['combined', true], id: 4 })).toEqual({ result: null, id: 4 });
    expect(await c.request({ method: 'GET_PROPERTY', params: ['combined'], id: 5 })).toEqual({ result: true, id: 5 });
    const from = c.messages.length;
    await waitUntil(() => c.messages.slice(from).some((m) => m.startsWith('{"stream":')), 3000, 'an envelope');
    expect(await c.request({ method: 'UNSUBSCRIBE', params: ['btcusdt@kline_1s'], id: null })).toEqual({ result: null, id: null });
    expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 7 })).toEqual({ result: ['ethusdt@kline_1s'], id: 7 });
    expect(s.sockets()[0]?.streams).toEqual(['ethusdt@kline_1s']);
  });

  it('replies to bad control messages with Binance error codes 0-3', async () => {
    const s = await start({ maxInboundPerSecond: 100 });
    const c = await connect(`${s.wsUrl}/stream`);
    const cases: [unknown, number, unknown][] = [
      [{ method: 'SET_PROPERTY', params: ['colour', true], id: 1 }, 0, 1],
      [{ method: 'SET_PROPERTY', params: ['combined', 'yes'], id: 2 }, 1, 2],
      [{ method: 'SET_PROPERTY', params: [5, true], id: 3 }, 2, 3],
      [{ method: 'GET_PROPERTY', params: ['combined', 'extra'], id: 4 }, 2, 4],
      [{ method: 'PUBLISH', params: [], id: 5 }, 2, 5],
      [{ params: [], id: 6 }, 2, 6],
      [{ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 1.5 }, 2, null],
      [{ method: 'SUBSCRIBE', params: [1, 2], id: 9 }, 2, 9],
    ];
    for (const [msg, code, id] of cases) {
      const from = c.messages.length;
      c.send(msg);
      await waitUntil(() => c.messages.length > from, 3000, `reply to ${JSON.stringify(msg)}`);
      const reply = JSON.parse(c.messages[from]!) as { error: { code: number; msg: string }; id: unknown };
      expect({ msg, code: reply.error.code, id: reply.id }).toEqual({ msg, code, id });
      expect(typeof reply.error.msg).toBe('string');
    }
    const from = c.messages.length;
    c.send('{"method": "SUBSCRIBE", oops');
    await waitUntil(() => c.messages.length > from, 3000, 'invalid JSON reply');
    expect(c.messages[from]).toMatch(/^\{"error":\{"code":3,"msg":"Invalid JSON: expected value at line 1 column \d+"\},"id":null\}$/);
    expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 10 })).toEqual({ result: [], id: 10 });
  });

  it('serves a request without an id and answers it with id null, as Binance does', async () => {
    const s = await start({ maxInboundPerSecond: 100 });
    const c = await connect(`${s.wsUrl}/ws`);
    const from = c.messages.length;
    c.send({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1s'] });
    await waitUntil(() => c.messages.length > from, 3000, 'reply to an id-less SUBSCRIBE');
    expect(JSON.parse(c.messages[from]!)).toEqual({ result: null, id: null });
    await waitUntil(() => klineEvents(c).length > 0, 5000, 'klines after an id-less SUBSCRIBE');
    expect(klineEvents(c)[0]?.data.s).toBe('BTCUSDT');
  });

  it('accepts uppercase and unknown stream names silently and sends nothing for them', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/ws/BTCUSDT@kline_1s/btcusdt@trade/btcusdt@kline_7m`);
    expect(await c.request({ method: 'SUBSCRIBE', params: ['ETHUSDT@kline_1s'], id: 1 })).toEqual({ result: null, id: 1 });
    await sleep(1200);
    expect(c.messages.length).toBe(1); // only the SUBSCRIBE reply
    expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 2 })).toEqual({
      result: ['BTCUSDT@kline_1s', 'btcusdt@trade', 'btcusdt@kline_7m', 'ETHUSDT@kline_1s'],
      id: 2,
    });
  });

  it('decodes percent-encoded stream names in both URL forms', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/stream?streams=btcusdt%40kline_1s`);
    const r = await connect(`${s.wsUrl}/ws/ethusdt%40kline_1s`);
    await waitUntil(() => klineEvents(c).length > 0 && klineEvents(r).length > 0, 3000, 'events on both');
    expect(klineEvents(c)[0]?.stream).toBe('btcusdt@kline_1s');
  });

  it('refuses SUBSCRIBE beyond maxStreamsPerConnection and oversize URLs', async () => {
    const s = await start({ maxStreamsPerConnection: 3 });
    const c = await connect(`${s.wsUrl}/stream?streams=a@kline_1m/b@kline_1m`);
    expect(await c.request({ method: 'SUBSCRIBE', params: ['c@kline_1m', 'a@kline_1m'], id: 1 })).toEqual({ result: null, id: 1 });
    const reply = await c.request({ method: 'SUBSCRIBE', params: ['d@kline_1m'], id: 2 });
    expect(reply).toMatchObject({ error: { code: 4 }, id: 2 });
    expect(s.sockets()[0]?.streams).toHaveLength(3);
    expect(await TestClient.refusal(`${s.wsUrl}/ws/a@kline_1m/b@kline_1m/c@kline_1m/d@kline_1m`)).toBe(400);
    expect(await TestClient.refusal(`${s.wsUrl}/nowhere`)).toBe(404);
  });

  it('keeps thousands of streams on one shared timer', async () => {
    const s = await start({ maxStreamsPerConnection: 1024, now: fastClock(10) });
    const names = Array.from({ length: 1000 }, (_, i) => `sym${String(i).padStart(4, '0')}usdt@kline_1s`);
    const a = await connect(`${s.wsUrl}/ws`);
    expect(await a.request({ method: 'SUBSCRIBE', params: names, id: 1 })).toEqual({ result: null, id: 1 });
    const b = await connect(`${s.wsUrl}/stream?streams=${names.slice(0, 500).join('/')}`);
    await waitUntil(() => new Set(klineEvents(a).filter((e) => e.data.k.x).map((e) => e.data.s)).size === 1000, 10_000, 'a closed candle on every stream');
    await waitUntil(() => new Set(klineEvents(b).filter((e) => e.data.k.x).map((e) => e.stream)).size === 500, 10_000, 'combined too');
  });
});
