/**
 * Request ids end to end, through a real relay and real ws clients: the ids Binance's own SDKs send
 * are served, and every error of a frame with a valid id carries it, so no client waits forever.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BTC, TestClient, cleanup, rawText, startRelay, wsCandle } from './helpers.ts';

afterEach(cleanup);

const UUID = 'f9dab9aa-db42-476a-98f8-f587080ba4d1';

describe('relay request ids', () => {
  it('serves a client that sends UUID ids, as binance-sdk-spot does, and delivers it candles', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/stream`);
    c.send(`{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"],"id":"${UUID}"}`);
    expect(await c.next()).toBe(`{"result":null,"id":"${UUID}"}`);
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await c.next()).toBe(`{"stream":"btcusdt@kline_1m","data":${rawText(b)}}`);
    c.send('{"method":"LIST_SUBSCRIPTIONS","id":"list_subscriptions-2"}');
    expect(await c.next()).toBe('{"result":["btcusdt@kline_1m"],"id":"list_subscriptions-2"}');
  });

  it('serves a request without an id and answers it with id null, as Binance does', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws`);
    c.send('{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"]}');
    expect(await c.next()).toBe('{"result":null,"id":null}');
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await c.next()).toBe(rawText(b));
  });

  it('answers every error of a frame with a valid id under that id, digit for digit', async () => {
    // Generous message budget: this test is about error ids, not the rate limit.
    const h = await startRelay({ maxMessagesPerSecond: 1000 });
    const c = await TestClient.open(`${h.url}/ws`);
    const cases: [string, string][] = [
      ['{"method":"FROBNICATE","params":[],"id":101}', '101'],
      ['{"method":7,"id":106}', '106'],
      ['{"params":["btcusdt@kline_1m"],"id":107}', '107'],
      ['{"method":"SUBSCRIBE","params":"btcusdt@kline_1m","id":108}', '108'],
      ['{"method":"GET_PROPERTY","params":["speed"],"id":109}', '109'],
      [`{"method":"SUBSCRIBE","id":"${UUID}"}`, `"${UUID}"`],
      ['{"method":"FROBNICATE","id":9223372036854775807}', '9223372036854775807'],
      [`{"method":"SUBSCRIBE","params":${'['.repeat(10_000)}${']'.repeat(10_000)},"id":110}`, '110'],
    ];
    for (const [text, id] of cases) {
      c.send(text);
      const reply = await c.next();
      expect(reply).toMatch(/^\{"error":\{"code":[0-3],"msg":"[^]*"\},"id":[^,]*\}$/);
      expect(reply.endsWith(`,"id":${id}}`)).toBe(true);
    }
    // Only what cannot be correlated gets id null: not JSON, or an invalid id.
    c.send('{"method":"FROBNICATE","id":101');
    expect(await c.nextJson()).toMatchObject({ error: { code: 3 }, id: null });
    c.send('{"method":"FROBNICATE","id":"not an id"}');
    expect(await c.nextJson()).toMatchObject({ error: { code: 2 }, id: null });
  });

  it('cuts a 60 KB unknown method short in its error reply', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws`);
    c.send(`{"method":"${'M'.repeat(60_000)}","id":5}`);
    const reply = await c.next();
    expect(reply.length).toBeLessThan(500);
    expect(JSON.parse(reply)).toMatchObject({ error: { code: 2 }, id: 5 });
  });
});
