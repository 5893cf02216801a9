import { afterEach, describe, expect, it } from 'vitest';
import { BTC, ETH, MANY, TZ, TestClient, cleanup, restCandle, startRelay, rawText, upgradeStatus, wsCandle } from './helpers.ts';

afterEach(cleanup);

/** Sentinel: the relay answers in order, so a reply proves nothing else was queued before it. */
async function expectNothingQueued(c: TestClient): Promise<void> {
  expect(await c.request({ method: 'GET_PROPERTY', params: ['combined'], id: 'sentinel' })).toMatchObject({ id: 'sentinel' });
}

describe('relay paths and payload shapes', () => {
  it('sends raw Binance payloads byte-identical to the candle raw on /ws/<stream> and /ws/<s1>/<s2>', async () => {
    const h = await startRelay();
    const one = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    const two = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m/ethusdt@kline_1m`);
    const b = wsCandle(BTC);
    const e = wsCandle(ETH, { closed: false });
    h.relay.deliver([b, e]);
    expect(await one.next()).toBe(rawText(b));
    expect(await two.next()).toBe(rawText(b));
    expect(await two.next()).toBe(rawText(e));
    await expectNothingQueued(one);
  });

  it('wraps payloads in {"stream","data"} envelopes on /stream?streams=a/b, including @+08:00 names', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/stream?streams=btcusdt@kline_1m/btcusdt@kline_1d@+08:00`);
    const b = wsCandle(BTC);
    const t = wsCandle(TZ);
    h.relay.deliver([b, t]);
    expect(await c.next()).toBe(`{"stream":"btcusdt@kline_1m","data":${rawText(b)}}`);
    expect(await c.next()).toBe(`{"stream":"btcusdt@kline_1d@+08:00","data":${rawText(t)}}`);
  });

  it('serializes REST-recovered candles in Binance key order with f/L -1 and B "0"', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    const before = Date.now();
    h.relay.deliver([restCandle(BTC, 1_700_000_040_000)]);
    const text = await c.next();
    const ev = JSON.parse(text) as { E: number; k: Record<string, unknown> };
    expect(Object.keys(ev)).toEqual(['e', 'E', 's', 'k']);
    expect(Object.keys(ev.k)).toEqual(['t', 'T', 's', 'i', 'f', 'L', 'o', 'c', 'h', 'l', 'v', 'n', 'x', 'q', 'V', 'Q', 'B']);
    expect(ev.k).toMatchObject({ f: -1, L: -1, B: '0', x: true, o: '27000.01000000' });
    expect(ev.E).toBeGreaterThanOrEqual(before);
  });

  it('accepts bare /ws and /stream then SUBSCRIBE, and ignores unserved streams in the path like Binance (ccxt /ws/0)', async () => {
    const h = await startRelay();
    const raw = await TestClient.open(`${h.url}/ws/0`);
    const combined = await TestClient.open(`${h.url}/stream`);
    expect(await raw.request({ method: 'LIST_SUBSCRIPTIONS', id: 1 })).toEqual({ result: [], id: 1 });
    expect(await raw.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 2 })).toEqual({ result: null, id: 2 });
    expect(await combined.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 3 })).toEqual({ result: null, id: 3 });
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await raw.next()).toBe(rawText(b));
    expect(await combined.next()).toBe(`{"stream":"btcusdt@kline_1m","data":${rawText(b)}}`);
  });

  it('answers 404 at upgrade for paths that are not /ws or /stream', async () => {
    const h = await startRelay();
    expect(await upgradeStatus(`${h.url}/api/v3/klines`)).toBe(404);
  });
});

describe('relay control messages', () => {
  it('SUBSCRIBE, UNSUBSCRIBE and LIST_SUBSCRIPTIONS change what the client receives', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws`);
    expect(await c.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m', 'ethusdt@kline_1m'], id: 1 })).toEqual({ result: null, id: 1 });
    expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 2 })).toEqual({ result: ['btcusdt@kline_1m', 'ethusdt@kline_1m'], id: 2 });
    expect(await c.request({ method: 'UNSUBSCRIBE', params: ['btcusdt@kline_1m'], id: 3 })).toEqual({ result: null, id: 3 });
    expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 4 })).toEqual({ result: ['ethusdt@kline_1m'], id: 4 });
    const e = wsCandle(ETH);
    h.relay.deliver([wsCandle(BTC), e]);
    expect(await c.next()).toBe(rawText(e));
    await expectNothingQueued(c);
  });

  it('SET_PROPERTY combined switches between raw payloads and envelopes; GET_PROPERTY reports it', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    expect(await c.request({ method: 'GET_PROPERTY', params: ['combined'], id: 1 })).toEqual({ result: false, id: 1 });
    expect(await c.request({ method: 'SET_PROPERTY', params: ['combined', true], id: 2 })).toEqual({ result: null, id: 2 });
    expect(await c.request({ method: 'GET_PROPERTY', params: ['combined'], id: 3 })).toEqual({ result: true, id: 3 });
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await c.next()).toBe(`{"stream":"btcusdt@kline_1m","data":${rawText(b)}}`);
  });

  it('echoes int64 and string ids exactly', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws`);
    c.send('{"method":"LIST_SUBSCRIPTIONS","id":9223372036854775807}');
    expect(await c.next()).toBe('{"result":[],"id":9223372036854775807}');
    c.send('{"method":"LIST_SUBSCRIPTIONS","id":"abcDEF123"}');
    expect(await c.next()).toBe('{"result":[],"id":"abcDEF123"}');
    c.send('{"method":"LIST_SUBSCRIPTIONS","id":null}');
    expect(await c.next()).toBe('{"result":[],"id":null}');
  });

  it('answers every error case with Binance codes while a well-behaved client beside it keeps receiving', async () => {
    // Generous message budget: this test is about error shapes, not the rate limit.
    const h = await startRelay({ maxMessagesPerSecond: 1000 });
    const good = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    const bad = await TestClient.open(`${h.url}/ws`);
    const cases: [string, unknown][] = [
      ['{"method":"SUBSCRIBE",\n "params": [x]}', { error: { code: 3, msg: 'Invalid JSON: expected value at line 2 column 13' }, id: null }],
      [
        '{"method":"FOO","params":[],"id":1}',
        {
          error: {
            code: 2,
            msg: 'Invalid request: unknown variant `FOO`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 15',
          },
          id: 1,
        },
      ],
      ['{"params":[],"id":1}', { error: { code: 2, msg: 'Invalid request: missing field `method` at line 1 column 20' }, id: 1 }],
      [`{"method":"LIST_SUBSCRIPTIONS","id":"${'x'.repeat(37)}"}`, { error: { code: 2 }, id: null }],
      ['{"method":"LIST_SUBSCRIPTIONS","id":9223372036854775808}', { error: { code: 2 }, id: null }],
      ['{"method":"LIST_SUBSCRIPTIONS","id":{"a":1}}', { error: { code: 2 }, id: null }],
      ['{"method":"SET_PROPERTY","params":["combined",true,false],"id":7}', { error: { code: 2, msg: 'Invalid request: too many parameters' }, id: 7 }],
      ['{"method":"GET_PROPERTY","params":["verbose"],"id":8}', { error: { code: 0, msg: 'Unknown property' }, id: 8 }],
      ['{"method":"SET_PROPERTY","params":["combined",1],"id":9}', { error: { code: 1, msg: 'Invalid value type: expected Boolean' }, id: 9 }],
      ['{"method":"SUBSCRIBE","params":"btcusdt@kline_1m","id":10}', { error: { code: 2 }, id: 10 }],
      [
        '{"method":"SUBSCRIBE","params":["btcusdt@kline_1m","dogeusdt@kline_1m"],"id":11}',
        { error: { code: 2, msg: 'Invalid request: stream "dogeusdt@kline_1m" is not served by this relay' }, id: 11 },
      ],
    ];
    for (const [text, expected] of cases) {
      bad.send(text);
      expect(await bad.nextJson()).toMatchObject(expected as object);
      const b = wsCandle(BTC);
      h.relay.deliver([b]);
      expect(await good.next()).toBe(rawText(b));
    }
    // The rejected SUBSCRIBE added nothing (not even the served stream in it).
    expect(await bad.request({ method: 'LIST_SUBSCRIPTIONS', id: 12 })).toEqual({ result: [], id: 12 });
    // A binary frame is answered as invalid JSON (documented choice), and the connection stays open.
    bad.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await bad.nextJson()).toEqual({ error: { code: 3, msg: 'Invalid JSON: expected a text frame' }, id: null });
    expect(await bad.request({ method: 'LIST_SUBSCRIPTIONS', id: 13 })).toEqual({ result: [], id: 13 });
    expect(h.relay.stats().clientErrors).toBe(cases.length + 1);
  });

  it('refuses a SUBSCRIBE that would pass the per-client stream cap and adds nothing', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws`);
    const first = MANY.slice(0, 1000).map((s) => s.name);
    expect(await c.request({ method: 'SUBSCRIBE', params: first, id: 1 })).toEqual({ result: null, id: 1 });
    const over = MANY.slice(1000, 1025).map((s) => s.name);
    expect(await c.request({ method: 'SUBSCRIBE', params: over, id: 2 })).toMatchObject({ error: { code: 2 }, id: 2 });
    const list = (await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 3 })) as { result: string[] };
    expect(list.result).toHaveLength(1000);
    expect(await c.request({ method: 'SUBSCRIBE', params: MANY.slice(1000, 1024).map((s) => s.name), id: 4 })).toEqual({ result: null, id: 4 });
  });

  it('takes as many names in one SUBSCRIBE as CONNECTOR_RELAY_MAX_STREAMS_PER_CLIENT allows when it is raised past 1024', async () => {
    const h = await startRelay({ maxStreamsPerClient: 1100, maxFrameBytes: 256 * 1024 });
    const c = await TestClient.open(`${h.url}/ws`);
    const all = MANY.map((s) => s.name);
    expect(all).toHaveLength(1100);
    expect(await c.request({ method: 'SUBSCRIBE', params: all, id: 1 })).toEqual({ result: null, id: 1 });
    const list = (await c.request({ method: 'LIST_SUBSCRIPTIONS', id: 2 })) as { result: string[] };
    expect(list.result).toHaveLength(1100);
    // The cap itself still holds.
    expect(await c.request({ method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 3 })).toMatchObject({ error: { code: 2 }, id: 3 });
  });
});
