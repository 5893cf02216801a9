/**
 * The rows of a venue-neutral klines query (dialect.ts `KlinesQuery`) as a pure function of the query,
 * the clock and the holes: the candles with open time in [from, to], none after the one forming at
 * `now`, holes skipped (they do not count towards `limit`), the oldest or the newest `limit` of them,
 * returned in ascending open time. Closed candles equal the series' `candleAt` exactly; the forming
 * one has its partial values at `now`.
 */
import { nextOpenTime, openTimeAt } from '../core/intervals.ts';
import type { KlinesQuery, SeriesCandle, SeriesStyle } from './dialect.ts';
import type { HoleSet } from './holes.ts';
import { candleAt, formingCandleAt } from './series.ts';

function prevOpenTime(interval: string, openTime: number): number {
  return openTimeAt(interval, openTime - 1);
}

/** The first open time ≥ t. */
function openTimeAtOrAfter(interval: string, t: number): number {
  const ot = openTimeAt(interval, t);
  return ot < t ? nextOpenTime(interval, ot) : ot;
}

export function queryCandles(style: SeriesStyle, q: KlinesQuery, now: number, holes: HoleSet): SeriesCandle[] {
  const lower = q.symbol.toLowerCase();
  const forming = openTimeAt(q.interval, now);
  const newest = q.forming === false ? prevOpenTime(q.interval, forming) : forming;
  const last = q.to === undefined ? newest : Math.min(newest, openTimeAt(q.interval, q.to));
  const first = q.from === undefined ? 0 : openTimeAtOrAfter(q.interval, Math.max(0, q.from));
  const row = (ot: number): SeriesCandle => {
    if (ot < forming) return candleAt(style, lower, q.interval, ot);
    const next = nextOpenTime(q.interval, ot);
    return formingCandleAt(style, lower, q.interval, ot, (now - ot) / (next - ot));
  };
  const rows: SeriesCandle[] = [];
  if (q.take === 'oldest') {
    let ot = first;
    while (ot <= last && rows.length < q.limit) {
      const hole = holes.find(lower, q.interval, ot);
      if (hole !== undefined) {
        // Jump past the hole in one step (holes can span millions of 1s candles).
        ot = Math.max(openTimeAtOrAfter(q.interval, hole.to), nextOpenTime(q.interval, ot));
        continue;
      }
      rows.push(row(ot));
      ot = nextOpenTime(q.interval, ot);
    }
    return rows;
  }
  let ot = last;
  while (ot >= first && ot >= 0 && rows.length < q.limit) {
    const hole = holes.find(lower, q.interval, ot);
    if (hole !== undefined) {
      ot = Math.min(prevOpenTime(q.interval, hole.from), prevOpenTime(q.interval, ot));
      continue;
    }
    rows.push(row(ot));
    ot = prevOpenTime(q.interval, ot);
  }
  return rows.reverse();
}
