/** Seam for time: wall-clock ms (exchange timestamps) and a monotonic ms clock (durations, latency). */
export interface Clock {
  /** Wall-clock milliseconds since the epoch. */
  now(): number;
  /** Monotonic milliseconds (performance.now()). */
  monotonic(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};
