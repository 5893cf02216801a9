/**
 * Binance REST backfill: GET /api/v3/klines over an undici keep-alive Pool (contract §3).
 *
 * - Paging: limit 1000, startTime/endTime, ascending; the last row of a page may be the candle still
 *   forming: only rows whose close time has passed are returned as closed. A range is asked for with
 *   one candle more than it spans, so the answer also says whether REST has moved past the range (its
 *   frontier: a missing candle before it is a hole) or has not got there yet (REST lags at times).
 * - Request weight: X-MBX-USED-WEIGHT-1M is authoritative; we stay under `maxWeightPerMinute`
 *   (default half of Binance's 6000 so other clients on the same IP keep room) by waiting for the next
 *   minute when the next request would cross it.
 * - 429 (Retry-After), 418 (IP auto-banned, Retry-After = the ban) and 403 (WAF, 5 min): the window is
 *   the IP's, not the request's. Every request leaves through one RestGate (core/rest-gate.ts), checked
 *   just before it is dispatched, so once any answer closes it no request of any stream leaves until
 *   the window has passed (requests already in flight aside), then the refused one is retried. Surfaced
 *   as a status event and in stats (→ /ready body, metrics).
 * - Network errors and 5xx: retried with jittered exponential backoff, and counted by a circuit breaker
 *   (cockatiel) that stops hammering a Binance that is down: 30 → 60 → 120 → 300 s recovery; half-open,
 *   it lets `CONNECTOR_CIRCUIT_BREAKER_HALF_OPEN_CALLS` trial requests through (the others wait for
 *   their verdict), and closes once they all succeed.
 * - Concurrency: a cockatiel bulkhead of `rest.concurrency` requests in flight.
 */
import { Pool, type Dispatcher } from 'undici';
import * as z from 'zod';
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
import type { RecoveredRange } from '../core/recovery.ts';
import { restBreakerName } from '../core/source.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import type { BreakerState, StatusStream } from '../core/status.ts';
import type { Config } from '../config/schema.ts';
import { ConnectorError } from '../core/errors.ts';
import { breakerRecoveryBackoff } from '../core/backoff.ts';
import { nextOpenTime } from '../core/intervals.ts';
import { parseRetryAfter } from '../core/retry-after.ts';
import { RestGate } from '../core/rest-gate.ts';
import type { Logger } from '../ops/logger.ts';

const KLINES_WEIGHT = 2;
const PAGE_LIMIT = 1000;
const WAF_BACKOFF_MS = 5 * 60_000;
const DEFAULT_RETRY_AFTER_MS = 60_000;

/** One /api/v3/klines row: prices and volumes stay strings (byte-faithful re-broadcast). */
const Row = z.tuple([
  z.number().int(), // open time
  z.string(), // open
  z.string(), // high
  z.string(), // low
  z.string(), // close
  z.string(), // volume
  z.number().int(), // close time
  z.string(), // quote volume
  z.number().int(), // trades
  z.string(), // taker buy base
  z.string(), // taker buy quote
  z.string(), // ignore
]);
const Rows = z.array(Row);

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

export interface BinanceRestOptions {
  readonly config: Config;
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

export class BinanceRest {
  readonly #o: BinanceRestOptions;
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

  constructor(options: BinanceRestOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#gate = options.gate ?? new RestGate(this.#clock);
    const url = new URL(options.config.binance.restUrl);
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
      options.status.emit({ type: 'breaker', name: restBreakerName('binance'), from, to });
    });
    this.#bulkhead = bulkhead(rest.concurrency, 10_000);
  }

  stats(): Readonly<RestStats> {
    const gate = this.#gate.state;
    // A ban (418) or a WAF block (403) is reported as such; a 429's window is a back-off, not a ban.
    this.#stats.bannedUntil = gate.kind === 'closed' && gate.cause !== '429' ? this.#gate.opensAt() : undefined;
    return this.#stats;
  }

  /**
   * The closed candles of `stream` with open time in [fromOpenTime, toOpenTimeExclusive), ascending.
   * Rows Binance does not have (its own outages) are simply absent; the caller counts them as holes.
   */
  readonly fetchClosed = async (stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal?: AbortSignal): Promise<Candle[]> =>
    (await this.#fetch(stream, fromOpenTime, toOpenTimeExclusive, signal)).candles;

  /** The same, with REST's frontier (gap recovery's RecoveryFetch: it tells holes from REST lag). */
  readonly fetchRange = (stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal?: AbortSignal): Promise<RecoveredRange> =>
    this.#fetch(stream, fromOpenTime, toOpenTimeExclusive, signal);

  async #fetch(stream: StreamRef, fromOpenTime: number, toOpenTimeExclusive: number, signal?: AbortSignal): Promise<{ candles: Candle[]; frontier: number | undefined }> {
    const candles: Candle[] = [];
    let frontier: number | undefined;
    let start = fromOpenTime;
    while (start < toOpenTimeExclusive) {
      // endTime is inclusive: the candle at toOpenTimeExclusive, when REST has it, shows REST is past the range.
      const rows = await this.#klines(stream, start, toOpenTimeExclusive, signal);
      const now = this.#clock.now();
      let last: number | undefined;
      for (const r of rows) {
        const openTime = r[0];
        if (openTime < start) continue;
        last = openTime;
        if (frontier === undefined || openTime > frontier) frontier = openTime;
        if (openTime >= toOpenTimeExclusive) break;
        if (r[6] >= now) break; // still forming: not closed yet
        candles.push(rowToCandle(stream, r, now, this.#clock.monotonic()));
      }
      if (rows.length < PAGE_LIMIT || last === undefined) break;
      start = nextOpenTime(stream.interval, last);
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

  async #klines(stream: StreamRef, startTime: number, endTime: number, signal?: AbortSignal): Promise<z.infer<typeof Rows>> {
    const query = `symbol=${encodeURIComponent(stream.symbol)}&interval=${encodeURIComponent(stream.interval)}&startTime=${startTime}&endTime=${endTime}&limit=${PAGE_LIMIT}`;
    const path = `${this.#basePath}/api/v3/klines?${query}`;
    const signals = signal === undefined ? this.#abort.signal : AbortSignal.any([signal, this.#abort.signal]);
    const backoffFactory = new ExponentialBackoff({ initialDelay: this.#o.retryBaseMs ?? 500, maxDelay: 30_000 });
    let backoff = backoffFactory.next();
    const maxAttempts = this.#o.maxAttempts ?? 4;
    for (let attempt = 1; ; attempt++) {
      signals.throwIfAborted();
      try {
        const body = await this.#bulkhead.execute(() => this.#breaker.execute(() => this.#get(path, signals)));
        return parseRows(body);
      } catch (err) {
        // The gate is closed now: the next attempt waits at it with every other request.
        if (err instanceof RestError && (err.status === 429 || err.status === 418 || err.status === 403)) continue;
        if (err instanceof BulkheadRejectedError) throw new RestError('CONNECTOR_ERR_REST_BUSY', 'REST bulkhead queue full', 0, true, { cause: err });
        if (err instanceof BrokenCircuitError) throw new RestError('CONNECTOR_ERR_REST_BREAKER_OPEN', 'Binance REST circuit breaker is open', 0, true, { cause: err });
        if (err instanceof RestError && err.retryable && attempt < maxAttempts) {
          await sleep(backoff.duration, signals);
          backoff = backoff.next(undefined);
          continue;
        }
        throw err;
      }
    }
  }

  async #get(path: string, signal: AbortSignal): Promise<unknown> {
    let res: Dispatcher.ResponseData;
    try {
      // Only through the gate, and inside the bulkhead slot: a request queued before a 429 arrived
      // must not leave on the strength of a check it passed before the window was announced.
      res = await this.#gate.pass(
        () => {
          this.#stats.requests++;
          this.#bumpLocalWeight();
          return this.#dispatcher.request({ origin: this.#origin, path, method: 'GET', signal, headers: { accept: 'application/json' } });
        },
        signal,
        this.#weightWaitMs,
      );
    } catch (err) {
      if (signal.aborted) throw err; // closing, or the caller gave up (perhaps while waiting at the gate): not an error of REST
      this.#stats.errors++;
      throw new RestError('CONNECTOR_ERR_REST_NETWORK', `Binance REST request failed: ${(err as Error).message}`, 0, true, { cause: err });
    }
    const used = Number(headerValue(res.headers['x-mbx-used-weight-1m']));
    if (Number.isFinite(used) && used >= 0) {
      this.#weightMinute = Math.floor(this.#clock.now() / 60_000);
      this.#stats.usedWeight1m = used;
    }
    const status = res.statusCode;
    if (status === 200) return res.body.json();
    const text = await res.body.text().catch(() => '');
    if (status === 429 || status === 418 || status === 403) {
      this.#stats.rateLimited++;
      const retryAfterMs = parseRetryAfter(res.headers['retry-after'], this.#clock.now());
      const waitMs = retryAfterMs ?? (status === 403 ? WAF_BACKOFF_MS : DEFAULT_RETRY_AFTER_MS);
      this.#gate.close(waitMs, String(status));
      this.#o.status.emit({ type: 'ratelimit', exchange: 'binance', scope: 'rest', kind: String(status), retryAfterMs: waitMs });
      throw new RestError(`CONNECTOR_ERR_REST_${status}`, `Binance REST ${status}: ${text.slice(0, 200)}`, status, false);
    }
    this.#stats.errors++;
    const retryable = status >= 500;
    throw new RestError('CONNECTOR_ERR_REST_STATUS', `Binance REST ${status}: ${text.slice(0, 200)}`, status, retryable);
  }

  #bumpLocalWeight(): void {
    const minute = Math.floor(this.#clock.now() / 60_000);
    if (minute !== this.#weightMinute) {
      this.#weightMinute = minute;
      this.#stats.usedWeight1m = 0;
    }
    this.#stats.usedWeight1m += KLINES_WEIGHT;
  }

  /** How long the next request must wait for this minute's weight budget (0: it may go now). */
  readonly #weightWaitMs = (): number => {
    const now = this.#clock.now();
    const minute = Math.floor(now / 60_000);
    if (minute === this.#weightMinute && this.#stats.usedWeight1m + KLINES_WEIGHT > this.#o.config.rest.maxWeightPerMinute) {
      return (minute + 1) * 60_000 - now + 50;
    }
    return 0;
  };
}

function parseRows(body: unknown): z.infer<typeof Rows> {
  const r = Rows.safeParse(body);
  if (!r.success) throw new RestError('CONNECTOR_ERR_REST_BODY', `unexpected /api/v3/klines body: ${z.prettifyError(r.error).slice(0, 300)}`, 200, true);
  return r.data;
}

function rowToCandle(stream: StreamRef, r: z.infer<typeof Row>, now: number, monotonic: number): Candle {
  return {
    stream,
    openTime: r[0],
    closeTime: r[6],
    eventTime: now,
    closed: true,
    open: r[1],
    high: r[2],
    low: r[3],
    close: r[4],
    volume: r[5],
    quoteVolume: r[7],
    trades: r[8],
    takerBuyBaseVolume: r[9],
    takerBuyQuoteVolume: r[10],
    firstTradeId: -1,
    lastTradeId: -1,
    ignore: '0',
    source: 'rest',
    raw: undefined,
    receivedAt: monotonic,
  };
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    t.unref();
    function onAbort(): void {
      clearTimeout(t);
      reject(signal.reason as Error);
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
