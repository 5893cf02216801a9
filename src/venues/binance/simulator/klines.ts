/**
 * Binance's view of the deterministic series (src/simulator/series.ts): the kline ground truth of a
 * profile, the kline event and the REST row, as Binance writes them.
 *
 * Every value is a pure function of (profile, lowercase symbol, interval, open time), so a test can
 * compute the candle the simulator will send (over WS or REST) and compare byte-for-byte. Each profile
 * has its own series (profiles.ts `series`): Binance spot and USD-M futures candles of the same symbol
 * differ (another salt), and print their strings the way each market does (spot: 8 decimals
 * everywhere; futures: tick and step precision).
 */
import type { SeriesCandle } from '../../../simulator/dialect.ts';
import { candleAt, formingCandleAt } from '../../../simulator/series.ts';
import { simulatorProfile } from './profiles.ts';
import type { SimulatorProfileId } from './profiles.ts';

export interface SimKline {
  t: number;
  T: number;
  /** UPPERCASE symbol, as in Binance events. */
  s: string;
  i: string;
  f: number;
  L: number;
  o: string;
  c: string;
  h: string;
  l: string;
  v: string;
  n: number;
  x: boolean;
  q: string;
  V: string;
  Q: string;
  B: string;
}

/** A series candle with Binance's field names (`B`, "ignore", is always "0"). */
export function simKline(c: SeriesCandle): SimKline {
  return {
    t: c.openTime,
    T: c.closeTime,
    s: c.symbol,
    i: c.interval,
    f: c.firstTradeId,
    L: c.lastTradeId,
    o: c.open,
    c: c.close,
    h: c.high,
    l: c.low,
    v: c.volume,
    n: c.trades,
    x: c.closed,
    q: c.quoteVolume,
    V: c.takerBuyVolume,
    Q: c.takerBuyQuoteVolume,
    B: '0',
  };
}

/**
 * The final (closed, `x: true`) candle opening at `openTime`, in `profile`'s series (default: spot).
 * Throws RangeError on a bad symbol or an interval the profile does not have (USD-M has no 1s).
 */
export function klineAt(symbol: string, interval: string, openTime: number, profile: SimulatorProfileId = 'binance'): SimKline {
  return simKline(candleAt(simulatorProfile(profile).series, symbol, interval, openTime));
}

/**
 * The candle opening at `openTime` as it looks after `progress` (0 ≤ progress < 1) of its duration:
 * `x: false`; `n`, `L`, volumes non-decreasing in progress; high/low only widen; all within the final candle.
 */
export function openKlineAt(
  symbol: string,
  interval: string,
  openTime: number,
  progress: number,
  profile: SimulatorProfileId = 'binance',
): SimKline {
  return simKline(formingCandleAt(simulatorProfile(profile).series, symbol, interval, openTime, progress));
}

/**
 * A Binance kline event, keys in Binance's exact order, no spaces. Built by concatenation (hot path):
 * the simulator only creates klines for validated symbols and intervals, which need no JSON escaping.
 */
export function klineEventJson(k: SimKline, eventTime: number): string {
  return (
    '{"e":"kline","E":' +
    String(eventTime) +
    ',"s":"' +
    k.s +
    '","k":{"t":' +
    String(k.t) +
    ',"T":' +
    String(k.T) +
    ',"s":"' +
    k.s +
    '","i":"' +
    k.i +
    '","f":' +
    String(k.f) +
    ',"L":' +
    String(k.L) +
    ',"o":"' +
    k.o +
    '","c":"' +
    k.c +
    '","h":"' +
    k.h +
    '","l":"' +
    k.l +
    '","v":"' +
    k.v +
    '","n":' +
    String(k.n) +
    ',"x":' +
    String(k.x) +
    ',"q":"' +
    k.q +
    '","V":"' +
    k.V +
    '","Q":"' +
    k.Q +
    '","B":"' +
    k.B +
    '"}}'
  );
}

export type RestRow = [number, string, string, string, string, string, number, string, number, string, string, string];

/** A `GET /api/v3/klines` row: [openTime, o, h, l, c, v, closeTime, q, n, V, Q, ignore]. */
export function restRow(k: SimKline): RestRow {
  return [k.t, k.o, k.h, k.l, k.c, k.v, k.T, k.q, k.n, k.V, k.Q, k.B];
}
