/**
 * The contract between gap recovery (pipeline/gaps.ts) and a venue's REST backfill: what a REST answer
 * for one missing range says, beyond the candles in it. Venue-agnostic, so the pipeline never imports
 * a venue and every venue's REST client answers in the same terms.
 */
import type { Candle, StreamRef } from './candle.ts';
import { candlesBetween, nextOpenTime, openTimeAt } from './intervals.ts';

export interface RecoveredRange {
  /** The closed candles of the range REST had, ascending; fewer than asked for (holes, or REST lagging). */
  readonly candles: readonly Candle[];
  /**
   * Open time of the newest row REST served for the stream in this answer: closed or still forming,
   * inside the range or past it (ask one candle past the range to learn it); undefined when it served
   * none. A missing candle before it is a hole (REST has moved past it); one after it may only not have
   * reached REST yet (contract §3: REST lags the stream at times).
   */
  readonly frontier: number | undefined;
}

/**
 * Fetch the CLOSED candles of `stream` with open time in [from, toExclusive), ascending. A plain list
 * says nothing about REST's frontier: a missing tail then waits for the hole horizon.
 */
export type RecoveryFetch = (
  stream: StreamRef,
  fromOpenTime: number,
  toOpenTimeExclusive: number,
  signal: AbortSignal,
) => Promise<RecoveredRange | readonly Candle[]>;

/** Default CONNECTOR_HOLE_HORIZON_MS: past it a missing range is a hole even if REST never moved past it. */
export const DEFAULT_HOLE_HORIZON_MS = 300_000;

/** A plain list (a fetch that cannot see past the range) tells nothing of REST's frontier. */
export function asRange(answer: RecoveredRange | readonly Candle[]): RecoveredRange {
  return 'candles' in answer ? answer : { candles: answer, frontier: undefined };
}

export interface SettledRange {
  /** The range's candles that are final, ascending, unique, in [from, to). */
  readonly final: readonly Candle[];
  /**
   * How far [from, to) is settled: every candle before this that is not in `final` is a hole. Below
   * `to`, REST has not got further yet (it lags the stream): ask again later for [reached, to).
   */
  readonly reached: number;
  /** Candles before `reached` that REST does not have: holes, never invented. */
  readonly holes: number;
}

/**
 * The one hole rule (contract §3), for gap recovery and for resume replays alike: a missing candle is
 * a hole only once REST has served a later candle of the stream (its frontier is past it) or it closed
 * more than `horizonMs` ago; until then it may just not have reached REST yet. REST's newest row is
 * final only once REST has a later one (or it is past the horizon): a lagging REST's "current" candle
 * may already be closed by our clock and still partial in REST's.
 */
export function settleRange(
  interval: string,
  from: number,
  to: number,
  answer: RecoveredRange | readonly Candle[],
  now: number,
  horizonMs: number,
): SettledRange {
  const { candles, frontier } = asRange(answer);
  // Candles opening before this closed longer ago than the horizon: REST would have them by now.
  const horizon = openTimeAt(interval, now - horizonMs);
  const final: Candle[] = [];
  let expect = from;
  for (const c of candles) {
    if (c.openTime < expect || c.openTime >= to) continue; // overlap or out of range
    if (c.openTime === frontier && c.openTime >= horizon) break;
    final.push(c);
    expect = nextOpenTime(interval, c.openTime);
  }
  const reached = Math.max(expect, Math.min(to, Math.max(frontier ?? Number.NEGATIVE_INFINITY, horizon)));
  return { final, reached, holes: candlesBetween(interval, from, reached) - final.length };
}
