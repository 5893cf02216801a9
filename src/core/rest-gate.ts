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
 * Request windows (BingX: 500 requests per 10 s per IP over all market data): the gate also keeps the
 * send times of the requests that passed it once a client asked `windowWaitMs`, so every client of
 * the origin counts against one window. Only as many times as the largest window asked for are kept.
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
  #sent: number[] = [];
  /** The longest window a client counts; 0: no send times are kept. */
  #keepMs = 0;
  /** The most requests a client's window allows: more send times than this are never needed. */
  #keepCount = 0;

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

  /**
   * How long until a request fits a window of at most `requests` per trailing `windowMs` (0: now),
   * counting every request that passed this gate from the first call on.
   */
  windowWaitMs(requests: number, windowMs: number): number {
    this.#keepMs = Math.max(this.#keepMs, windowMs);
    this.#keepCount = Math.max(this.#keepCount, requests);
    const now = this.#clock.monotonic();
    this.#trim(now);
    const sent = this.#sent;
    let inWindow = 0;
    for (let i = sent.length - 1; i >= 0 && (sent[i] ?? 0) > now - windowMs; i--) inWindow++;
    if (inWindow < requests) return 0;
    // The oldest of the last `requests` sends must leave the window first.
    return (sent[sent.length - requests] ?? now) + windowMs - now + 1;
  }

  #trim(now: number): void {
    const sent = this.#sent;
    let drop = Math.max(0, sent.length - this.#keepCount);
    while (drop < sent.length && (sent[drop] ?? 0) <= now - this.#keepMs) drop++;
    if (drop > 0) sent.splice(0, drop);
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
      if (wait <= 0) {
        if (this.#keepMs > 0) {
          const now = this.#clock.monotonic();
          this.#sent.push(now);
          this.#trim(now);
        }
        return send();
      }
      await sleep(wait, signal);
    }
  }
}
