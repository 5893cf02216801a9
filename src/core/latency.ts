/**
 * A fixed-bucket latency histogram with plain counters: recording is an array increment (no label
 * hashing on the hot path); the metrics module copies it into the Prometheus exposition on scrape.
 */

/** Upper bounds in seconds: 50 µs … 2.5 s, with boundaries on the 1 ms / 2 ms / 5 ms SLOs. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

export class LatencyRecorder {
  readonly bucketsSeconds: readonly number[];
  readonly #boundsMs: Float64Array;
  /** counts[i] = observations <= bucketsSeconds[i] (non-cumulative); last slot is +Inf. */
  readonly counts: Float64Array;
  sumSeconds = 0;
  count = 0;

  constructor(bucketsSeconds: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    this.bucketsSeconds = bucketsSeconds;
    this.#boundsMs = Float64Array.from(bucketsSeconds, (s) => s * 1000);
    this.counts = new Float64Array(bucketsSeconds.length + 1);
  }

  /** Record one observation in milliseconds (negative values, e.g. from clock skew, are clamped to 0). */
  observeMs(ms: number): void {
    const v = ms > 0 ? ms : 0;
    const bounds = this.#boundsMs;
    let i = 0;
    while (i < bounds.length && v > (bounds[i] ?? Infinity)) i++;
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.sumSeconds += v / 1000;
    this.count++;
  }
}
