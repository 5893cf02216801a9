/**
 * The gate every REST request of one venue passes just before it leaves (contract §3). Venues count
 * request weight per egress IP, not per request: when one request is told to back off (Binance: a 429
 * with `Retry-After`, a 418 ban, a 403 from its WAF), every other request from this IP has to wait
 * too, or the IP earns a ban. binance-spot-api-docs rest-api.md "LIMITS": a 429 carries Retry-After;
 * an IP that keeps sending after it is auto-banned with 418, from 2 minutes up to 3 days.
 *
 * Venue-agnostic: the REST client decides which answers close the gate and for how long; the gate
 * only guarantees that no request leaves while it is closed. Requests already in flight when it closes
 * are not recalled (nothing can recall them). One gate per venue REST origin; two clients of the same
 * origin share one.
 *
 *        open ──close(ms, cause)──► closed(until, cause) ──until passed──► open
 *                                        │ close(longer)
 *                                        └──► closed(later until)   (a shorter window never shortens it)
 *
 * Request windows (RestPage.window: OKX 40 per 2 s on /market/candles, BingX 500 per 10 s over all
 * market data) are kept here, keyed, so every client of the origin (BingX spot and swap) counts
 * against one window. A request holds its slot from when it leaves until `windowMs` after its answer.
 */
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import { sleep } from './sleep.ts';

export type RestGateState = { readonly kind: 'open' } | { readonly kind: 'closed'; readonly cause: string; readonly untilMono: number };

const OPEN: RestGateState = { kind: 'open' };

export class RestGate {
  readonly #clock: Clock;
  #state: RestGateState = OPEN;
  /** Monotonic send times of the requests that passed, ascending (only while some client counts a window). */
  readonly #windows = new Map<string, RequestWindow>();

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  /** The current state; a window that has run out reads as open. */
  get state(): RestGateState {
    const s = this.#state;
    if (s.kind === 'closed' && s.untilMono <= this.#clock.monotonic()) this.#state = OPEN;
    return this.#state;
  }

  /** Close for `ms` from now because of `cause` (e.g. `'429'`). A longer window already running is kept. */
  close(ms: number, cause: string): void {
    const until = this.#clock.monotonic() + Math.max(0, ms);
    const s = this.state;
    if (s.kind === 'closed' && s.untilMono >= until) return;
    this.#state = { kind: 'closed', cause, untilMono: until };
  }

  /** Milliseconds until the gate opens; 0 when it is open. */
  remainingMs(): number {
    const s = this.state;
    return s.kind === 'open' ? 0 : s.untilMono - this.#clock.monotonic();
  }

  /** Wall-clock time the gate opens (for /ready and metrics); undefined while open. */
  opensAt(): number | undefined {
    const left = this.remainingMs();
    return left > 0 ? Math.round(this.#clock.now() + left) : undefined;
  }

  /** The window of `key` on this origin, made on first use with its limit (one per key: the first page's figures hold). */
  window(key: string, limit: number, windowMs: number): RequestWindow {
    let w = this.#windows.get(key);
    if (w === undefined) this.#windows.set(key, (w = new RequestWindow(limit, windowMs)));
    return w;
  }

  /**
   * Wait until the gate is open and `hold()` (the caller's own budget, e.g. request weight left this
   * minute; 0 = go) lets the request out, then call `send`, in the same synchronous run as that last
   * check: nothing can close the gate between the check and the request leaving. Rejects with the
   * signal's reason when aborted while waiting.
   */
  async pass<T>(send: () => Promise<T>, signal: AbortSignal, hold?: () => number): Promise<T> {
    for (;;) {
      signal.throwIfAborted();
      const wait = Math.max(this.remainingMs(), hold?.() ?? 0);
      if (wait <= 0) return send();
      await sleep(wait, signal);
    }
  }
}

/** A request's place in a window: held until `end` (monotonic ms of its answer) + the window; Infinity while in flight. */
export interface WindowSlot {
  end: number;
}

/** While a full window has only requests in flight (no end yet), how often to look again. */
const WINDOW_POLL_MS = 50;

/** At most `limit` requests in any `windowMs`, each counted from when it leaves until `windowMs` after its answer. */
export class RequestWindow {
  readonly #limit: number;
  readonly #windowMs: number;
  #slots: WindowSlot[] = [];

  constructor(limit: number, windowMs: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  #expire(now: number): void {
    if (this.#slots.some((s) => s.end <= now - this.#windowMs)) this.#slots = this.#slots.filter((s) => s.end > now - this.#windowMs);
  }

  /** How long until a request may go (0: now). */
  waitMs(now: number): number {
    this.#expire(now);
    if (this.#slots.length < this.#limit) return 0;
    let first = Number.POSITIVE_INFINITY;
    for (const s of this.#slots) first = Math.min(first, s.end);
    return first === Number.POSITIVE_INFINITY ? WINDOW_POLL_MS : first + this.#windowMs - now + 1;
  }

  /** A request leaves now: its slot, whose `end` the caller sets when the answer (or the failure) is in. */
  take(now: number): WindowSlot {
    this.#expire(now);
    const slot: WindowSlot = { end: Number.POSITIVE_INFINITY };
    this.#slots.push(slot);
    return slot;
  }
}
