import { describe, expect, it } from 'vitest';
import { closeTimeOf, nextOpenTime, openTimeAt } from '../../../../src/core/intervals.ts';
import { klineAt, klineEventJson, openKlineAt, restRow } from '../../../../src/venues/binance/simulator/klines.ts';

const T0 = 1_700_000_040_000; // a minute boundary
const INTERVALS = ['1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d'];

describe('simulator ground truth (klines.ts)', () => {
  it('is deterministic and case-insensitive in the symbol', () => {
    expect(klineAt('btcusdt', '1m', T0)).toEqual(klineAt('BTCUSDT', '1m', T0));
    expect(openKlineAt('ethusdt', '1s', T0, 0.4)).toEqual(openKlineAt('ETHUSDT', '1s', T0, 0.4));
    expect(klineAt('btcusdt', '1m', T0)).not.toEqual(klineAt('btcusdt', '1m', T0 + 60_000));
    expect(klineAt('btcusdt', '1m', T0).o).not.toBe(klineAt('ethusdt', '1m', T0).o);
  });

  it('prints prices and volumes with 8 decimals and keeps h >= max(o,c), l <= min(o,c)', () => {
    for (const symbol of ['btcusdt', 'ethusdt', 'xrpusdt', 'sym0042usdt', 'abcbtc']) {
      for (const interval of INTERVALS) {
        let ot = openTimeAt(interval, T0);
        for (let i = 0; i < 5; i++, ot = nextOpenTime(interval, ot)) {
          const k = klineAt(symbol, interval, ot);
          for (const field of [k.o, k.c, k.h, k.l, k.v, k.q, k.V, k.Q]) expect(field).toMatch(/^\d+\.\d{8}$/);
          const [o, c, h, l] = [k.o, k.c, k.h, k.l].map(Number) as [number, number, number, number];
          expect(h).toBeGreaterThanOrEqual(Math.max(o, c));
          expect(l).toBeLessThanOrEqual(Math.min(o, c));
          expect(l).toBeGreaterThan(0);
          expect(Number(k.V)).toBeLessThanOrEqual(Number(k.v));
          expect(Number(k.Q)).toBeLessThanOrEqual(Number(k.q));
          expect(k.n).toBe(k.L - k.f + 1);
          expect(k.n).toBeGreaterThanOrEqual(1);
          expect(k.x).toBe(true);
          expect(k.s).toBe(symbol.toUpperCase());
          expect(k.T).toBe(closeTimeOf(interval, k.t));
        }
      }
    }
  });

  it('chains candles: close equals the next open, trade ids never overlap, and agree across intervals', () => {
    let prev = klineAt('btcusdt', '1s', T0);
    for (let i = 1; i < 200; i++) {
      const k = klineAt('btcusdt', '1s', T0 + i * 1000);
      expect(k.o).toBe(prev.c);
      expect(k.f).toBe(prev.L + 1);
      prev = k;
    }
    const minute = klineAt('btcusdt', '1m', T0);
    expect(minute.f).toBe(klineAt('btcusdt', '1s', T0).f);
    expect(minute.L).toBe(klineAt('btcusdt', '1s', T0 + 59_000).L);
    expect(minute.o).toBe(klineAt('btcusdt', '1s', T0).o);
    expect(minute.c).toBe(klineAt('btcusdt', '1s', T0 + 59_000).c);
  });

  it('grows open candles monotonically and stays inside the final candle', () => {
    for (const interval of ['1s', '1m', '1h']) {
      const final = klineAt('solusdt', interval, T0);
      let prev = openKlineAt('solusdt', interval, T0, 0);
      for (let i = 1; i <= 100; i++) {
        const k = openKlineAt('solusdt', interval, T0, i / 100.5);
        expect(k.x).toBe(false);
        expect(k.o).toBe(final.o);
        expect(k.f).toBe(final.f);
        expect(k.n).toBeGreaterThanOrEqual(prev.n);
        expect(k.L).toBeGreaterThanOrEqual(prev.L);
        expect(Number(k.v)).toBeGreaterThanOrEqual(Number(prev.v));
        expect(Number(k.h)).toBeGreaterThanOrEqual(Number(prev.h));
        expect(Number(k.l)).toBeLessThanOrEqual(Number(prev.l));
        expect(k.n).toBeLessThanOrEqual(final.n);
        expect(Number(k.h)).toBeLessThanOrEqual(Number(final.h));
        expect(Number(k.l)).toBeGreaterThanOrEqual(Number(final.l));
        expect(Number(k.c)).toBeLessThanOrEqual(Number(k.h));
        expect(Number(k.c)).toBeGreaterThanOrEqual(Number(k.l));
        prev = k;
      }
    }
  });

  it('serializes events with Binance key order and no spaces', () => {
    const k = klineAt('btcusdt', '1m', T0);
    const json = klineEventJson(k, T0 + 60_005);
    expect(json).not.toMatch(/\s/);
    expect(json.startsWith(`{"e":"kline","E":${T0 + 60_005},"s":"BTCUSDT","k":{"t":${T0},"T":${T0 + 59_999},"s":"BTCUSDT","i":"1m","f":`)).toBe(true);
    const parsed = JSON.parse(json) as { k: Record<string, unknown> };
    expect(Object.keys(parsed.k)).toEqual(['t', 'T', 's', 'i', 'f', 'L', 'o', 'c', 'h', 'l', 'v', 'n', 'x', 'q', 'V', 'Q', 'B']);
    expect(parsed.k).toEqual({ ...k });
  });

  it('lays out REST rows as Binance does', () => {
    const k = klineAt('ethusdt', '5m', T0);
    expect(restRow(k)).toEqual([k.t, k.o, k.h, k.l, k.c, k.v, k.T, k.q, k.n, k.V, k.Q, '0']);
  });

  it('handles calendar months and Monday weeks', () => {
    const jan = Date.UTC(2024, 0, 1);
    const m = klineAt('btcusdt', '1M', jan);
    expect(m.T).toBe(Date.UTC(2024, 1, 1) - 1);
    expect(klineAt('btcusdt', '1M', Date.UTC(2024, 1, 1)).o).toBe(m.c);
    const monday = Date.UTC(2024, 0, 8);
    expect(klineAt('btcusdt', '1w', monday).T).toBe(monday + 7 * 86_400_000 - 1);
  });

  it('rejects symbols that would need JSON escaping and unknown intervals', () => {
    expect(() => klineAt('btc"usdt', '1m', T0)).toThrow(RangeError);
    expect(() => klineAt('btcusdt', '7m', T0)).toThrow(RangeError);
  });
});
