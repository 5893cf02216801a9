/** Backoff schedules shared by every breaker (WebSocket attempts, REST). */
import { IterableBackoff } from 'cockatiel';

/**
 * Breaker recovery waits: double from `baseMs` while under half the cap, then the cap.
 * With the defaults 30 s / 300 s: 30 → 60 → 120 → 300 → 300 … (contract §2).
 */
export function breakerRecoverySchedule(baseMs: number, maxMs: number): number[] {
  const out: number[] = [];
  let d = baseMs;
  while (d < maxMs / 2) {
    out.push(d);
    d *= 2;
  }
  out.push(maxMs);
  return out;
}

export function breakerRecoveryBackoff(baseMs: number, maxMs: number): IterableBackoff {
  return new IterableBackoff(breakerRecoverySchedule(baseMs, maxMs));
}
