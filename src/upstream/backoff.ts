/**
 * Reconnect timing for upstream sockets: the jittered exponential reconnect backoff (a cockatiel
 * `IBackoff`, immutable: `next()` returns the following step) and the sliding-window budget of
 * connection attempts that holds even in a storm of failures (Binance: 300 per 5 min per IP).
 * Breaker recovery uses the shared schedule in src/core/backoff.ts.
 */
import type { IBackoff } from 'cockatiel';

export interface ReconnectTiming {
  readonly baseMs: number;
  readonly maxMs: number;
  /** 0..1: the delay is scaled by a factor in [1 - jitter, 1 + jitter). */
  readonly jitter: number;
}

/**
 * Delay before reconnect attempt `attempt` (1-based):
 * `min(maxMs, baseMs · 2^(attempt-1)) × (1 + jitter · (2u - 1))`, u ∈ [0, 1) from `random`.
 * The jitter spreads sockets that failed together so they do not reconnect together.
 */
export function reconnectDelay(attempt: number, timing: ReconnectTiming, random: () => number): number {
  const exp = Math.min(timing.maxMs, timing.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 52));
  const u = random();
  return Math.max(0, Math.round(exp * (1 + timing.jitter * (2 * u - 1))));
}

/** The envelope a delay for `attempt` must fall in (tests, docs). */
export function reconnectEnvelope(attempt: number, timing: ReconnectTiming): { readonly min: number; readonly max: number } {
  const exp = Math.min(timing.maxMs, timing.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 52));
  return { min: Math.floor(exp * (1 - timing.jitter)), max: Math.ceil(exp * (1 + timing.jitter)) };
}

/** Immutable step of the reconnect schedule; `attempt` is 1-based. */
export class ReconnectBackoff implements IBackoff<unknown> {
  readonly attempt: number;
  readonly duration: number;
  readonly #timing: ReconnectTiming;
  readonly #random: () => number;

  constructor(timing: ReconnectTiming, random: () => number, attempt = 1) {
    this.#timing = timing;
    this.#random = random;
    this.attempt = attempt;
    this.duration = reconnectDelay(attempt, timing, random);
  }

  next(): ReconnectBackoff {
    return new ReconnectBackoff(this.#timing, this.#random, this.attempt + 1);
  }
}

/**
 * At most `limit` attempts in any `windowMs` (sliding). `take` records one attempt if allowed;
 * `nextAt` says when the next one will be. Timestamps are the caller's monotonic ms.
 */
export class AttemptBudget {
  readonly limit: number;
  readonly windowMs: number;
  /** Attempt times, oldest first; never longer than `limit`. */
  readonly #times: number[] = [];

  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  #expire(now: number): void {
    while (this.#times.length > 0 && (this.#times[0] ?? 0) <= now - this.windowMs) this.#times.shift();
  }

  /** Record an attempt at `now` if the window has room; false otherwise. */
  take(now: number): boolean {
    this.#expire(now);
    if (this.#times.length >= this.limit) return false;
    this.#times.push(now);
    return true;
  }

  /** Earliest time an attempt will be allowed (≤ now when one is allowed now). */
  nextAt(now: number): number {
    this.#expire(now);
    if (this.#times.length < this.limit) return now;
    return (this.#times[0] ?? now) + this.windowMs;
  }

  used(now: number): number {
    this.#expire(now);
    return this.#times.length;
  }
}
