/**
 * The contract between gap recovery (pipeline/gaps.ts) and a venue's REST backfill: what a REST answer
 * for one missing range says, beyond the candles in it. Venue-agnostic, so the pipeline never imports
 * a venue and every venue's REST client answers in the same terms.
 */
import type { Candle, StreamRef } from './candle.ts';

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
