/**
 * What a REST-polled venue (PolledVenueAdapter, poller.ts) can carry from one egress IP. Pure
 * arithmetic, read by the configuration (to refuse what cannot be polled) and by the poller (to warn
 * about boundary bursts); no imports beyond the interval table.
 *
 * Each stream takes one request per candle: a klines page is per (symbol, interval), so nothing can
 * be batched across streams. In the steady state the streams therefore need Σ 1 / interval requests
 * per second, and that must stay within the venue's `poll.pollsPerSecond` (the share of its
 * per-second budget left to polls; gap recovery and resume replays use the rest). With Pionex's
 * figures (6 polls/s of the 8/s we let out of its 10/s per IP) one IP carries at most 360 streams of
 * 1m alone, 1800 of 5m, 5400 of 15m, 10 800 of 30m, 21 600 of 1h, 86 400 of 4h and 518 400 of 1d; mixed
 * intervals share the budget in proportion. Beyond that the configuration is refused (a poller that
 * cannot keep up falls behind without bound); shard the streams over more IPs (CONNECTOR_SHARD).
 *
 * Bursts: candles of every interval close together at UTC boundaries (every one of them at 00:00),
 * so all streams become due at once and the last poll of that boundary leaves `streams /
 * requestsPerSecond` seconds after the close. That delay is the price of polling; the poller warns
 * at start when it passes half of the shortest interval.
 */
import { nominalMs } from '../core/intervals.ts';

/** Requests per second `intervals` (one entry per stream) need in the steady state: one per candle each. */
export function pollLoad(intervals: readonly string[]): number {
  let load = 0;
  for (const i of intervals) load += 1000 / nominalMs(i);
  return load;
}

/** The most streams of `interval` alone that `pollsPerSecond` carries. */
export function maxPolledStreams(pollsPerSecond: number, interval: string): number {
  return Math.floor((pollsPerSecond * nominalMs(interval)) / 1000);
}

/** Seconds after a boundary where `streams` all close at once until the last of their polls leaves, at `requestsPerSecond`. */
export function burstSeconds(streams: number, requestsPerSecond: number): number {
  return streams / requestsPerSecond;
}
