/**
 * REST recovery for one venue (contract §3): its klines pages over an undici keep-alive Pool.
 * Venue-agnostic; the venue adapter (venue.ts) supplies one page's request (path, weight) and its rows
 * as candles, the order pages come in, its usage header and which answers close the IP-wide gate.
 *
 * - Paging, in either order: oldest-first venues (Binance) are walked forward from the start of the
 *   range, newest-first ones (Bybit, OKX) backward from its end; each page's rows are sorted and
 *   de-duplicated by open time before use. The newest row may be the candle still forming: only rows
 *   whose close time has passed are returned as closed. A range is asked for with one candle more than
 *   it spans, so the answer also says whether REST has moved past the range (its frontier: a missing
 *   candle before it is a hole) or has not got there yet (REST lags at times).
 * - Request weight: the venue's usage header (Binance X-MBX-USED-WEIGHT-1M) is authoritative; we stay
 *   under `maxWeightPerMinute`, clamped to the venue's own limit (default 3000: half of Binance spot's
 *   6000 so other clients on the same IP keep room; USD-M's limit is 2400) by waiting for the next
 *   minute when the next request would cross it. A venue with a request cap per rolling window
 *   (RestPage.window: OKX per endpoint, BingX and Bybit per IP) has it counted by the IP's RestGate,
 *   over every client of the origin (spot and derivatives of one venue share it).
 * - The gate statuses (Binance: 429 with Retry-After, 418 = IP auto-banned for Retry-After, 403 = WAF,
 *   5 min): the window is the IP's, not the request's. Every request leaves through one RestGate
 *   (core/rest-gate.ts), checked just before it is dispatched, so once any answer closes it no request
 *   of any stream leaves until the window has passed (requests already in flight aside), then the
 *   refused one is retried. Surfaced as a status event and in stats (→ /ready body, metrics). A venue
 *   that extends its ban per request inside it (`repeatPenaltyMs`, Pionex +10 s) has the window grow
 *   by that for every gate answer that arrives while it is closed (requests that were in flight).
 * - Requests per second, for venues that count per second (`requestsPerSecond`, Pionex 10/s per IP
 *   less a margin): requests leave evenly spaced at that rate, checked at the gate with the weight budget.
 * - Network errors and 5xx: retried with jittered exponential backoff, and counted by a circuit breaker
 *   (cockatiel, `<venue>.rest`) that stops hammering a venue that is down: 30 → 60 → 120 → 300 s
 *   recovery; half-open, it lets `CONNECTOR_CIRCUIT_BREAKER_HALF_OPEN_CALLS` trial requests through (the
 *   others wait for their verdict), and closes once they all succeed.
 * - Concurrency: a cockatiel bulkhead of `rest.concurrency` requests in flight.
 * - Finer windows: a page may name the venue's own request-rate window (OKX: 40 requests per 2 s on
 *   `/market/candles`); its requests wait at the gate until that window has room, counted as the venue
 *   counts them (RequestWindow). A 200 body the venue's `refusal` reads as a rate-limit answer (OKX:
 *   code 50011) closes the gate like a 429.
 */
import { createRequire } from 'node:module';
import type { Dispatcher, Pool as UndiciPool } from 'undici';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  bulkhead,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
  type BulkheadPolicy,
} from 'cockatiel';
import type { Candle, StreamRef } from '../core/candle.ts';
import type { AnyVenueAdapter, RestPage, RestProtocol } from './venue.ts';
import type { RecoveredRange } from '../core/recovery.ts';
import { restBreakerName } from '../core/source.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import type { BreakerState, StatusStream } from '../core/status.ts';
import type { Config } from '../config/schema.ts';
import { ConnectorError, errorMessage } from '../core/errors.ts';
import { breakerRecoveryBackoff } from '../core/backoff.ts';
import { candlesBetween, nextOpenTime } from '../core/intervals.ts';
import { parseRetryAfter } from '../core/retry-after.ts';
import { RestGate, type RequestWindow, type WindowSlot } from '../core/rest-gate.ts';
import type { Logger } from '../ops/logger.ts';
import { sleep } from '../core/sleep.ts';

// Only the Pool and `request`, not undici's index: the index loads fetch, WebSocket, the caches and
// more (~3.5 MB of the daemon's RSS, ARCHITECTURE.md, Performance / Memory) for a daemon that needs
// one keep-alive pool. The index is also what mixes `request` into every Dispatcher, so it is called
// on the dispatcher here (it works on any Dispatcher: a Pool, a test's MockAgent). undici has no
// exports map, so the files are reachable; a rename in an upgrade fails every REST test at once.
const requireUndici = createRequire(import.meta.url);
const Pool = requireUndici('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
const request = requireUndici('undici/lib/api/api-request.js') as (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

export class RestError extends ConnectorError {
  readonly status: number;
  readonly retryable: boolean;
  constructor(code: string, message: string, status: number, retryable: boolean, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'RestError';
    this.status = status;
    this.retryable = retryable;
  }
}

export interface RestClientOptions {
  readonly config: Config;
  readonly venue: AnyVenueAdapter;
  /** The venue's REST origin (its `<prefix>REST_URL`), optionally with a base path. */
  readonly restUrl: string;
  readonly status: StatusStream;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Seam: an undici Dispatcher (tests may pass a MockAgent); default a keep-alive Pool on the REST origin. */
  readonly dispatcher?: Dispatcher;
  /** The IP-wide gate (one per REST origin; share it when two clients use the same one). Default: its own. */
  readonly gate?: RestGate;
  /** Transient retries per request before the error goes to the caller (default 4). */
  readonly maxAttempts?: number;
  readonly retryBaseMs?: number;
}

export interface RestStats {
  requests: number;
  rateLimited: number;
  errors: number;
  usedWeight1m: number;
  bannedUntil: number | undefined;
  breaker: BreakerState;
}

export class RestClient {
  readonly venue: string;
  readonly #o: RestClientOptions;
  readonly #proto: RestProtocol;
  readonly #title: string;
  /** CONNECTOR_REST_MAX_WEIGHT_PER_MINUTE, clamped to the venue's own limit. */
  readonly #weightBudget: number;
  readonly #clock: Clock;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #breaker: CircuitBreakerPolicy;
  readonly #bulkhead: BulkheadPolicy;
  readonly #gate: RestGate;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #abort = new AbortController();
  #breakerState: BreakerState = 'closed';
  #weightMinute = -1;
  #closed = false;
  readonly #stats: RestStats = { requests: 0, rateLimited: 0, errors: 0, usedWeight1m: 0, bannedUntil: undefined, breaker: 'closed' };

  constructor(options: RestClientOptions) {
    this.venue = options.venue.id;
    this.#o = options;
    this.#proto = options.venue.rest;
    this.#title = options.venue.title;
    this.#weightBudget = Math.min(options.config.rest.maxWeightPerMinute, options.venue.rest.weightLimitPerMinute);
    this.#clock = options.clock ?? systemClock;
    this.#gate = options.gate ?? new RestGate(this.#clock);
    const url = new URL(options.restUrl);
    this.#origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    const rest = options.config.rest;
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher =
      options.dispatcher ??
      new Pool(this.#origin, {
        connections: rest.poolSize,
        keepAliveTimeout: 30_000,
        headersTimeout: rest.timeoutMs,
        bodyTimeout: rest.timeoutMs,
        connect: { timeout: rest.timeoutMs },
      });
    const b = options.config.breaker;
    this.#breaker = circuitBreaker(
      handleWhen((err) => err instanceof RestError && err.retryable),
      {
        breaker: new ConsecutiveBreaker(b.failureThreshold),
        halfOpenAfter: breakerRecoveryBackoff(b.recoveryTimeoutMs, b.recoveryMaxMs),
        // Half-open: that many trials at once; any failure re-opens, all succeeding closes it.
        halfOpenSampling: { calls: b.halfOpenCalls, threshold: 0 },
      },
    );
    this.#breaker.onStateChange((s) => {
      const to: BreakerState = s === CircuitState.Closed ? 'closed' : s === CircuitState.HalfOpen ? 'half-open' : 'open';
      if (to === this.#breakerState) return;
      const from = this.#breakerState;
      this.#breakerState = to;
      this.#stats.breaker = to;
      options.status.emit({ type: 'breaker', name: restBreakerName(options.venue.id), from, to });
    });
    this.#bulkhead = bulkhead(rest.concurrency, 10_000);
  }

  stats(): Readonly<RestStats> {
    const gate = this.#gate.state;
    // A ban (Binance: 418, or a WAF block 403) is reported as such; a 429's window is a back-off, not a ban.
    this.#stats.bannedUntil = gate.kind === 'closed' && this.#proto.banStatuses.includes(Number(gate.cause)) ? this.#gate.opensAt() : undefined;
    return this.#stats;
  }

  /**
   * The closed candles of `stream` with open time in [fromOpenTime, toOpenTimeExclusive), ascending.
   * Rows the venue does not have (its own outages) are simply absent; the caller counts them as holes.
   */
  readonly fetchClosed = async (stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal?: AbortSignal): Promise<Candle[]> =>
    (await this.#fetch(stream, fromOpenTime, toOpenTimeExclusive, signal)).candles;

  /** The same, with REST's frontier (gap recovery's RecoveryFetch: it tells holes from REST lag). */
  readonly fetchRange = (stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal?: AbortSignal): Promise<RecoveredRange> =>
    this.#fetch(stream, fromOpenTime, toOpenTimeExclusive, signal);

  async #fetch(stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal?: AbortSignal): Promise<{ candles: Candle[]; frontier: number | undefined }> {
    return this.#proto.order === 'oldest-first'
      ? this.#forward(stream, fromOpenTime, toOpenTimeExclusive, signal)
      : this.#backward(stream, fromOpenTime, toOpenTimeExclusive, signal);
  }

  /** Oldest-first pages (Binance): from the start of the range on, each page after the previous one's last row. */
  async #forward(stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal?: AbortSignal): Promise<{ candles: Candle[]; frontier: number | undefined }> {
    const candles: Candle[] = [];
    let frontier: number | undefined;
    let start = fromOpenTime;
    while (start < toOpenTimeExclusive) {
      // endTime is inclusive: the candle at toOpenTimeExclusive, when REST has it, shows REST is past the range.
      const { rows, full } = await this.#klines(stream, start, toOpenTimeExclusive, signal);
      const now = this.#clock.now();
      let last: number | undefined;
      for (const c of rows) {
        const openTime = c.openTime;
        if (openTime < start) continue;
        last = openTime;
        if (frontier === undefined || openTime > frontier) frontier = openTime;
        if (openTime >= toOpenTimeExclusive) break;
        if (c.closeTime >= now) break; // still forming: not closed yet
        candles.push(c);
      }
      if (!full || last === undefined) break;
      start = nextOpenTime(stream.interval, last);
    }
    return { candles, frontier };
  }

  /**
   * Newest-first pages (Bybit, OKX: a page is the newest `limit` rows up to its end): from the end of
   * the range back, each page ending before the previous one's oldest row, then put in order.
   */
  async #backward(stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal?: AbortSignal): Promise<{ candles: Candle[]; frontier: number | undefined }> {
    const pages: (readonly Candle[])[] = [];
    let frontier: number | undefined;
    let end = toOpenTimeExclusive;
    for (;;) {
      const { rows, full } = await this.#klines(stream, fromOpenTime, end, signal);
      const inRange = rows.filter((c) => c.openTime >= fromOpenTime && c.openTime <= end);
      const newest = inRange.at(-1);
      if (newest !== undefined && (frontier === undefined || newest.openTime > frontier)) frontier = newest.openTime;
      pages.unshift(inRange);
      const oldest = inRange[0];
      if (!full || oldest === undefined || oldest.openTime <= fromOpenTime) break;
      end = oldest.openTime - 1;
    }
    const now = this.#clock.now();
    const candles: Candle[] = [];
    done: for (const page of pages) {
      for (const c of page) {
        if (c.openTime >= toOpenTimeExclusive || c.closeTime >= now) break done; // past the range, or still forming
        candles.push(c);
      }
    }
    return { candles, frontier };
  }

  /** Idempotent: aborts waits, closes the pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  /** One page: its rows ascending and unique by open time, and whether it was full (there may be more). */
  async #klines(stream: StreamRef, startTime: number, endTime: number, signal?: AbortSignal): Promise<{ rows: readonly Candle[]; full: boolean }> {
    const page = this.#proto.page(stream, startTime, endTime, candlesBetween(stream.interval, startTime, endTime) + 1, this.#clock.now());
    const path = `${this.#basePath}${page.path}`;
    const signals = signal === undefined ? this.#abort.signal : AbortSignal.any([signal, this.#abort.signal]);
    const backoffFactory = new ExponentialBackoff({ initialDelay: this.#o.retryBaseMs ?? 500, maxDelay: 30_000 });
    let backoff = backoffFactory.next();
    const maxAttempts = this.#o.maxAttempts ?? 4;
    for (let attempt = 1; ; attempt++) {
      signals.throwIfAborted();
      try {
        const body = await this.#bulkhead.execute(() => this.#breaker.execute(() => this.#get(path, page, signals)));
        const rows = this.#proto.parse(body, stream, this.#clock.now(), this.#clock.monotonic());
        if (typeof rows === 'string') throw new RestError('CONNECTOR_ERR_REST_BODY', rows, 200, true);
        return { rows: ascending(rows), full: rows.length >= page.limit };
      } catch (err) {
        // The gate is closed now: the next attempt waits at it with every other request.
        if (err instanceof RestError && this.#proto.gateStatuses[err.status] !== undefined) continue;
        if (err instanceof BulkheadRejectedError) throw new RestError('CONNECTOR_ERR_REST_BUSY', 'REST bulkhead queue full', 0, true, { cause: err });
        if (err instanceof BrokenCircuitError) throw new RestError('CONNECTOR_ERR_REST_BREAKER_OPEN', `${this.#title} REST circuit breaker is open`, 0, true, { cause: err });
        if (err instanceof RestError && err.retryable && attempt < maxAttempts) {
          await sleep(backoff.duration, signals);
          backoff = backoff.next(undefined);
          continue;
        }
        throw err;
      }
    }
  }

  async #get(path: string, page: RestPage, signal: AbortSignal): Promise<unknown> {
    let res: Dispatcher.ResponseData;
    const weight = page.weight;
    const window = this.#window(page);
    const perSecond = this.#perSecond();
    let slot: WindowSlot | undefined;
    let secondSlot: WindowSlot | undefined;
    const answered = (): void => {
      const at = this.#clock.monotonic();
      if (slot !== undefined) slot.end = at;
      if (secondSlot !== undefined) secondSlot.end = at;
    };
    try {
      // Only through the gate, and inside the bulkhead slot: a request queued before a 429 arrived
      // must not leave on the strength of a check it passed before the window was announced.
      res = await this.#gate.pass(
        () => {
          this.#stats.requests++;
          this.#bumpLocalWeight(weight);
          const at = this.#clock.monotonic();
          slot = window?.take(at);
          secondSlot = perSecond?.take(at);
          return request.call(this.#dispatcher, { origin: this.#origin, path, method: 'GET', signal, headers: { accept: 'application/json' } });
        },
        signal,
        () => Math.max(this.#weightWaitMs(weight), window?.waitMs(this.#clock.monotonic()) ?? 0, perSecond?.waitMs(this.#clock.monotonic()) ?? 0),
      );
      answered();
    } catch (err) {
      answered();
      if (signal.aborted) throw err; // closing, or the caller gave up (perhaps while waiting at the gate): not an error of REST
      this.#stats.errors++;
      throw new RestError('CONNECTOR_ERR_REST_NETWORK', `${this.#title} REST request failed: ${(err as Error).message}`, 0, true, { cause: err });
    }
    const header = this.#proto.usedWeightHeader;
    const used = header === undefined ? Number.NaN : Number(headerValue(res.headers[header]));
    if (Number.isFinite(used) && used >= 0) {
      this.#weightMinute = Math.floor(this.#clock.now() / 60_000);
      this.#stats.usedWeight1m = used;
    }
    let status = res.statusCode;
    let text: string;
    if (status === 200) {
      let body: unknown;
      try {
        body = await res.body.json();
      } catch (err) {
        // A 200 that is not JSON (a proxy's error page, a cut-off body) is a bad body: retried, and counted
        // by the breaker like a 5xx (what answers is not the venue's API).
        if (signal.aborted) throw err;
        throw new RestError('CONNECTOR_ERR_REST_BODY', `${this.#title} REST answered 200 with a body that is not JSON: ${errorMessage(err)}`, 200, true, { cause: err });
      }
      // A refusal dressed as a 200 (BingX 100410, OKX 50011) is handled as the status it stands for.
      const as = this.#proto.bodyStatus?.(body);
      if (as === undefined) return body;
      status = as;
      text = JSON.stringify(body);
    } else {
      text = await res.body.text().catch(() => '');
    }
    const defaultWaitMs = this.#proto.gateStatuses[status];
    if (defaultWaitMs !== undefined) {
      this.#stats.rateLimited++;
      const announced = parseRetryAfter(res.headers['retry-after'], this.#clock.now()) ?? defaultWaitMs;
      // A venue that extends its ban for every request inside it (repeatPenaltyMs) counted this one
      // if the gate is already closed: it was in flight when the ban began. The window grows with it.
      const running = this.#gate.remainingMs();
      const penalty = this.#proto.repeatPenaltyMs;
      const waitMs = penalty !== undefined && running > 0 ? Math.max(announced, running + penalty) : announced;
      this.#gate.close(waitMs, String(status));
      this.#o.status.emit({ type: 'ratelimit', venue: this.venue, scope: 'rest', kind: String(status), retryAfterMs: waitMs });
      throw new RestError(`CONNECTOR_ERR_REST_${status}`, `${this.#title} REST ${status}: ${text.slice(0, 200)}`, status, false);
    }
    this.#stats.errors++;
    const retryable = status >= 500;
    throw new RestError('CONNECTOR_ERR_REST_STATUS', `${this.#title} REST ${status}: ${text.slice(0, 200)}`, status, retryable);
  }

  #window(page: RestPage): RequestWindow | undefined {
    const w = page.window;
    return w === undefined ? undefined : this.#gate.window(w.key, w.limit, w.windowMs);
  }

  /**
   * A venue that counts per second (rest.requestsPerSecond) has that as one more window of the origin's
   * gate: counted, as every window is, from when a request leaves until a second after its answer, so
   * no burst lets a second's worth out twice inside one of the venue's seconds (arrival jitter aside).
   */
  #perSecond(): RequestWindow | undefined {
    const rate = this.#proto.requestsPerSecond;
    return rate === undefined ? undefined : this.#gate.window(`${this.venue}:per-second`, rate, 1000);
  }

  #bumpLocalWeight(weight: number): void {
    const minute = Math.floor(this.#clock.now() / 60_000);
    if (minute !== this.#weightMinute) {
      this.#weightMinute = minute;
      this.#stats.usedWeight1m = 0;
    }
    this.#stats.usedWeight1m += weight;
  }

  /** How long a request of `weight` must wait for this minute's weight budget (0: it may go now). */
  #weightWaitMs(weight: number): number {
    const now = this.#clock.now();
    const minute = Math.floor(now / 60_000);
    if (minute === this.#weightMinute && this.#stats.usedWeight1m + weight > this.#weightBudget) {
      return (minute + 1) * 60_000 - now + 50;
    }
    return 0;
  }
}

/** Rows in ascending open time, one per open time (venues send either order; "always sort, then dedup"). */
function ascending(rows: readonly Candle[]): readonly Candle[] {
  let sorted = true;
  for (let i = 1; i < rows.length; i++) {
    if ((rows[i]?.openTime ?? 0) <= (rows[i - 1]?.openTime ?? 0)) {
      sorted = false;
      break;
    }
  }
  if (sorted) return rows;
  const out: Candle[] = [];
  for (const c of [...rows].sort((a, b) => a.openTime - b.openTime)) if (out.at(-1)?.openTime !== c.openTime) out.push(c);
  return out;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
