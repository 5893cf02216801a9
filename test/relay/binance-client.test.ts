/**
 * Compatibility: the `binance` npm package (tiagosiebler/binance) pointed at the relay by its `wsUrl`
 * option. For public market streams it connects to `${wsUrl}/stream` and SUBSCRIBEs; it makes no REST
 * calls for them, so nothing here leaves 127.0.0.1 (the relay's open events prove where it connected).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebsocketClient } from 'binance';
import { BTC, cleanup, startRelay, rawText, waitFor, wsCandle } from './helpers.ts';

const quiet = {
  trace: (): void => undefined,
  info: (): void => undefined,
  error: (): void => undefined,
};

let client: WebsocketClient | undefined;

afterEach(async () => {
  client?.closeAll(true);
  client = undefined;
  await cleanup();
});

describe('binance npm WebsocketClient against the relay', () => {
  it('subscribes through SUBSCRIBE on /stream and receives klines, raw and beautified', async () => {
    const h = await startRelay();
    client = new WebsocketClient({ wsUrl: h.url, beautify: true, disableHeartbeat: true, reconnectTimeout: 60_000 }, quiet);
    const raw: unknown[] = [];
    const formatted: unknown[] = [];
    const exceptions: unknown[] = [];
    client.on('message', (m: unknown) => raw.push(m));
    client.on('formattedMessage', (m: unknown) => formatted.push(m));
    client.on('exception', (e: unknown) => exceptions.push(e));
    const responses: unknown[] = [];
    client.on('response', (r: unknown) => responses.push(r));

    void client.subscribeSpotKline('btcusdt', '1m');
    // The library acknowledges the SUBSCRIBE reply ({"result":null,"id":N}) with a 'response' event.
    await waitFor(() => responses.length > 0, 5000, 'the SUBSCRIBE reply');
    expect(responses[0]).toMatchObject({ result: null });
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.client.open', path: '/stream' }));
    expect(h.relay.stats().clients).toBe(1);

    const c = wsCandle(BTC);
    h.relay.deliver([c]);
    await waitFor(() => raw.length > 0 && formatted.length > 0, 5000, 'the library to emit the kline');
    // The library unwraps the envelope's `data` and tags it with the stream name it came from.
    expect(raw[0]).toMatchObject({ ...(JSON.parse(rawText(c)) as object), streamName: 'btcusdt@kline_1m', wsMarket: 'spot' });
    expect(formatted[0]).toMatchObject({
      eventType: 'kline',
      symbol: 'BTCUSDT',
      kline: { startTime: c.openTime, interval: '1m', open: 0.01, close: 0.0101, final: true },
    });
    expect(exceptions).toEqual([]);
  });
});
