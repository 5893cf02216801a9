/** The venue-neutral deterministic series (src/simulator/series.ts). */
import { describe, expect, it } from 'vitest';
import type { SeriesStyle } from '../../src/simulator/dialect.ts';
import { candleAt, formingCandleAt } from '../../src/simulator/series.ts';
import { klineAt } from '../../src/venues/binance/simulator/klines.ts';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const INTERVALS = new Set(['1s', '1m', '1h']);
const EIGHT: SeriesStyle = { salt: 0, priceDecimals: 'eight', baseDecimals: 8, quoteDecimals: 8, intervals: INTERVALS };
const TICK: SeriesStyle = { salt: 0x1234, priceDecimals: 'tick', baseDecimals: 4, quoteDecimals: 2, intervals: INTERVALS };

describe('the deterministic series', () => {
  it('salt 0 with eight decimals is Binance spot’s historical series, value for value', () => {
    const c = candleAt(EIGHT, 'btcusdt', '1m', T0);
    const k = klineAt('btcusdt', '1m', T0);
    expect([c.open, c.high, c.low, c.close, c.volume, c.quoteVolume, c.takerBuyVolume, c.takerBuyQuoteVolume]).toEqual([k.o, k.h, k.l, k.c, k.v, k.q, k.V, k.Q]);
    expect([c.openTime, c.closeTime, c.trades, c.firstTradeId, c.lastTradeId, c.symbol]).toEqual([k.t, k.T, k.n, k.f, k.L, k.s]);
  });

  it('gives each salt its own candles for the same symbol, and is a pure function of its inputs', () => {
    const a = candleAt(TICK, 'ETHUSDT', '1m', T0);
    const b = candleAt({ ...TICK, salt: 0x4321 }, 'ETHUSDT', '1m', T0);
    expect(a).not.toEqual(b);
    expect(candleAt(TICK, 'ethusdt', '1m', T0)).toEqual(a); // case-insensitive
  });

  it('prints with the style’s decimals, and a native symbol with separators trades near its pair’s level', () => {
    const c = candleAt(TICK, 'BTC-USDT', '1h', T0);
    expect(c.symbol).toBe('BTC-USDT');
    for (const p of [c.open, c.high, c.low, c.close]) expect(p).toMatch(/^\d+\.\d{2}$/);
    expect(c.volume).toMatch(/^\d+\.\d{4}$/);
    expect(c.quoteVolume).toMatch(/^\d+\.\d{2}$/);
    expect(Math.abs(Number(c.open) / 43_000 - 1)).toBeLessThan(0.06);
  });

  it('keeps a forming candle within the final one, growing towards it', () => {
    const final = candleAt(TICK, 'SOLUSDT', '1m', T0);
    let trades = 0;
    for (const p of [0, 0.25, 0.5, 0.75, 0.99]) {
      const f = formingCandleAt(TICK, 'SOLUSDT', '1m', T0, p);
      expect(f.closed).toBe(false);
      expect(f.trades).toBeGreaterThanOrEqual(trades);
      trades = f.trades;
      expect(Number(f.high)).toBeLessThanOrEqual(Number(final.high));
      expect(Number(f.low)).toBeGreaterThanOrEqual(Number(final.low));
      expect(f.open).toBe(final.open);
    }
  });

  it('throws RangeError for an interval the style lacks and for a malformed symbol', () => {
    expect(() => candleAt(TICK, 'BTCUSDT', '5m', T0)).toThrow(RangeError);
    expect(() => candleAt(TICK, 'BTC"USDT', '1m', T0)).toThrow(RangeError);
  });
});
