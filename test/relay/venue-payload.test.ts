/**
 * The relay's kline event for every venue (contract §5): one Binance kline shape, `s`/`k.s` the native
 * symbol, `k.i` the canonical interval, `null` for what the venue does not publish; a venue whose own
 * event already is that shape has its bytes forwarded untouched (the fast path), whatever the venue.
 */
import { describe, expect, it } from 'vitest';
import type { Candle } from '../../src/core/candle.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { klinePayload } from '../../src/relay/protocol.ts';

const registry = new StreamRegistry();
const OKX = registry.register('okx', 'okx:btc-usdt-swap@kline_1h', 'BTC-USDT-SWAP', '1h', { topic: 'candle1H:BTC-USDT-SWAP', nativeInterval: '1H' });
const USDM = registry.register('binance-usdm', 'binance-usdm:btcusdt@kline_1m', 'BTCUSDT', '1m', { topic: 'btcusdt@kline_1m' });

const T = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000);

describe('relay kline events for every venue', () => {
  it('writes null for what a venue does not publish, the native symbol and the canonical interval', () => {
    const candle: Candle = {
      stream: OKX,
      openTime: T,
      closeTime: T + 3_599_999,
      eventTime: T + 5000,
      closed: false,
      open: '42000.1',
      high: '42100',
      low: '41900.5',
      close: '42050',
      volume: '12.5',
      quoteVolume: '525000.25',
      source: 'ws',
      raw: undefined,
      receivedAt: 0,
    };
    const event = JSON.parse(klinePayload(candle, T + 9999).toString('utf8')) as Record<string, unknown>;
    expect(event).toEqual({
      e: 'kline',
      E: T + 5000,
      s: 'BTC-USDT-SWAP',
      k: {
        t: T,
        T: T + 3_599_999,
        s: 'BTC-USDT-SWAP',
        i: '1h',
        f: null,
        L: null,
        o: '42000.1',
        c: '42050',
        h: '42100',
        l: '41900.5',
        v: '12.5',
        n: null,
        x: false,
        q: '525000.25',
        V: null,
        Q: null,
        B: null,
      },
    });
    // Binance's key order, as every Binance client expects it.
    expect(Object.keys(event.k as object)).toEqual(['t', 'T', 's', 'i', 'f', 'L', 'o', 'c', 'h', 'l', 'v', 'n', 'x', 'q', 'V', 'Q', 'B']);
  });

  it('forwards a venue’s own Binance-shaped event bytes as they are, not only Binance spot’s', () => {
    const raw = Buffer.from('{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":0,"T":59999,"s":"BTCUSDT","i":"1m","f":1,"L":2,"o":"1.0","c":"1.0","h":"1.0","l":"1.0","v":"0.001","n":2,"x":false,"q":"0.001","V":"0","Q":"0","B":"0"}}');
    const candle: Candle = {
      stream: USDM,
      openTime: 0,
      closeTime: 59_999,
      eventTime: 1,
      closed: false,
      open: '1.0',
      high: '1.0',
      low: '1.0',
      close: '1.0',
      volume: '0.001',
      source: 'ws',
      raw,
      receivedAt: 0,
    };
    expect(klinePayload(candle, 5)).toBe(raw);
  });
});
