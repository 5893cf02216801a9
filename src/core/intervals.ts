/**
 * Canonical kline intervals and their arithmetic (UTC). Every venue's candles are keyed by these
 * (contract §2a): Binance's spelling, fixed intervals aligned to the epoch, weeks to Monday 00:00 UTC,
 * months to the calendar. A venue maps them to its own names (`1`, `60`, `D`; `1H`, `1Dutc`; `1min`)
 * in its adapter; those names never appear in the configuration or on the relay. Everything here is
 * pure and allocation-free.
 */

/** Every canonical interval, shortest first. */
export const CANONICAL_INTERVALS = ['1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'] as const;
export type CanonicalInterval = (typeof CANONICAL_INTERVALS)[number];

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** 1970-01-05 was the first Monday after the epoch. */
const MONDAY_OFFSET = 4 * DAY;

const FIXED: Readonly<Record<string, number>> = {
  '1s': SECOND,
  '1m': MINUTE,
  '3m': 3 * MINUTE,
  '5m': 5 * MINUTE,
  '15m': 15 * MINUTE,
  '30m': 30 * MINUTE,
  '1h': HOUR,
  '2h': 2 * HOUR,
  '4h': 4 * HOUR,
  '6h': 6 * HOUR,
  '8h': 8 * HOUR,
  '12h': 12 * HOUR,
  '1d': DAY,
  '3d': 3 * DAY,
  '1w': 7 * DAY,
};

export function isInterval(interval: string): interval is CanonicalInterval {
  return interval === '1M' || FIXED[interval] !== undefined;
}

/** Nominal length in ms (31 days for 1M: use only for budgets, never for alignment). */
export function nominalMs(interval: string): number {
  if (interval === '1M') return 31 * DAY;
  const ms = FIXED[interval];
  if (ms === undefined) throw new RangeError(`unknown kline interval ${interval}`);
  return ms;
}

/** Open time of the candle containing `t`. */
export function openTimeAt(interval: string, t: number): number {
  if (interval === '1M') {
    const d = new Date(t);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  const ms = nominalMs(interval);
  if (interval === '1w') return Math.floor((t - MONDAY_OFFSET) / ms) * ms + MONDAY_OFFSET;
  return Math.floor(t / ms) * ms;
}

/** Open time of the candle after the one opening at `openTime`. */
export function nextOpenTime(interval: string, openTime: number): number {
  if (interval === '1M') {
    const d = new Date(openTime);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
  return openTime + nominalMs(interval);
}

/** Close time in Binance's convention (the canonical one): the last millisecond of the candle. */
export function closeTimeOf(interval: string, openTime: number): number {
  return nextOpenTime(interval, openTime) - 1;
}

/** Number of candles from `fromOpenTime` (inclusive) to `toOpenTime` (exclusive). */
export function candlesBetween(interval: string, fromOpenTime: number, toOpenTime: number): number {
  if (toOpenTime <= fromOpenTime) return 0;
  if (interval !== '1M') return Math.round((toOpenTime - fromOpenTime) / nominalMs(interval));
  const a = new Date(fromOpenTime);
  const b = new Date(toOpenTime);
  return (b.getUTCFullYear() - a.getUTCFullYear()) * 12 + (b.getUTCMonth() - a.getUTCMonth());
}
