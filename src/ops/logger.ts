/** pino, JSON lines on stdout, and the bridge that turns every status event into one log line. */
import { pino, type Logger, type Level } from 'pino';
import type { StatusEvent, StatusEventOf, StatusStream, Disposable } from '../core/status.ts';

export type { Logger } from 'pino';

export function createLogger(level: Level | 'silent', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'kline-connector' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', 'token', '*.token'], censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

const LEVEL: Record<StatusEvent['type'], Level> = {
  'connection.state': 'info',
  'connection.quality': 'info',
  'connection.error': 'warn',
  'connection.reconnect': 'info',
  'connection.rotation': 'info',
  'server.shutdown-notice': 'warn',
  'stream.stale': 'warn',
  'stream.live': 'info',
  breaker: 'warn',
  'parse.error': 'warn',
  ratelimit: 'warn',
  backfill: 'info',
  'queue.blocked': 'warn',
  'queue.resumed': 'info',
  'sink.state': 'info',
  'sink.shedding': 'warn',
  'sink.gap': 'warn',
  'relay.client.open': 'debug',
  'relay.client.close': 'debug',
  'relay.client.rejected': 'info',
  'relay.slow-consumer': 'warn',
  'relay.client.error': 'debug',
  'relay.budget': 'warn',
  'relay.tls': 'info',
  'heap.pressure': 'warn',
  lifecycle: 'info',
};

/** Rejected relay upgrades logged at info: at most this many per window, the rest at debug. */
export const REJECTED_INFO_PER_WINDOW = 10;
export const REJECTED_WINDOW_MS = 10_000;

export interface LogStatusOptions {
  /** Failed backfill attempts are summed up in one line per this many ms (default 30 000). */
  readonly backfillFailureIntervalMs?: number;
  /** Monotonic ms for the rejection sampler's window. Default performance.now. */
  readonly now?: () => number;
}

/**
 * Rejected upgrades come before auth, so anyone can make them: unsampled, 2000 of them wrote 30 MB
 * of info lines in half a second (issue 12). A fixed window lets REJECTED_INFO_PER_WINDOW through at
 * info; the rest go to debug, and the next info line says how many were held back (`suppressed`).
 */
class Sampler {
  readonly #now: () => number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #logged = 0;
  #suppressed = 0;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** undefined: over the allowance (log at debug); else the count held back since the last admitted line. */
  admit(): number | undefined {
    const now = this.#now();
    if (now - this.#windowStart >= REJECTED_WINDOW_MS) {
      this.#windowStart = now;
      this.#logged = 0;
    }
    if (this.#logged >= REJECTED_INFO_PER_WINDOW) {
      this.#suppressed++;
      return undefined;
    }
    this.#logged++;
    const held = this.#suppressed;
    this.#suppressed = 0;
    return held;
  }
}

/**
 * Log every status event as one structured line: `{"level":"warn","event":"stream.stale",...}`.
 * Two exceptions, both because anyone (a REST outage, an unauthenticated client) can make them
 * arbitrarily many: failed backfill attempts are summed up, one line per interval (while REST is down
 * every waiting stream fails again on every retry; see BackfillFailureLog), and rejected relay
 * upgrades are sampled (Sampler).
 */
export function logStatus(status: StatusStream, log: Logger, options: LogStatusOptions = {}): Disposable {
  const failures = new BackfillFailureLog(log, options.backfillFailureIntervalMs ?? 30_000);
  const rejected = new Sampler(options.now ?? (() => performance.now()));
  const subscription = status.subscribe((event) => {
    if (event.type === 'backfill' && event.outcome === 'failed') {
      failures.add(event);
      return;
    }
    let level = LEVEL[event.type];
    if (event.type === 'backfill' && event.outcome !== 'ok') level = 'warn';
    if (event.type === 'ratelimit' && event.kind === '418') level = 'error';
    if (event.type === 'connection.state' && event.to === 'failed') level = 'error';
    if (event.type === 'sink.state' && event.to === 'failing') level = 'warn';
    // Candles a sink without catch-up will never have.
    if (event.type === 'sink.gap' && !event.catchUp) level = 'error';
    if ((event.type === 'relay.budget' || event.type === 'heap.pressure') && (event.state === 'under' || event.state === 'normal')) level = 'info';
    if (event.type === 'relay.tls' && event.outcome === 'failed') level = 'warn';
    const { type, ...fields } = event;
    if (event.type === 'relay.client.rejected') {
      const suppressed = rejected.admit();
      if (suppressed === undefined) log.debug({ event: type, ...fields }, type);
      else if (suppressed > 0) log.info({ event: type, ...fields, suppressed }, type);
      else log.info({ event: type, ...fields }, type);
      return;
    }
    log[level]({ event: type, ...fields }, type);
  });
  return {
    dispose: () => {
      subscription.dispose();
      failures.close();
    },
  };
}

/** Streams named in a summary line; the count covers the rest. */
const SAMPLE_STREAMS = 5;

/**
 * Failed backfill attempts, summed up. The first failure after a quiet spell is logged as it is (an
 * operator sees it at once) and opens an interval; failures inside it are counted, and at its end one
 * line says how many streams kept failing, how often, and the last error, then the next interval
 * starts. An interval without failures ends the summing up.
 */
class BackfillFailureLog {
  readonly #log: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  readonly #streams = new Set<string>();
  #attempts = 0;
  #error = '';

  constructor(log: Logger, intervalMs: number) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  add(event: StatusEventOf<'backfill'>): void {
    if (this.#timer === undefined) {
      const { type, ...fields } = event;
      this.#log.warn({ event: type, ...fields }, type);
      this.#arm();
      return;
    }
    this.#streams.add(event.stream);
    this.#attempts++;
    this.#error = event.error ?? this.#error;
  }

  /** Logs what is still counted (nothing is lost at shutdown), stops the timer. Idempotent. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flush();
  }

  #arm(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#flush()) this.#arm();
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** One summary line for the interval; false when there was nothing to say. */
  #flush(): boolean {
    if (this.#attempts === 0) return false;
    this.#log.warn(
      {
        event: 'backfill',
        outcome: 'failed',
        streams: this.#streams.size,
        attempts: this.#attempts,
        error: this.#error,
        sample: [...this.#streams].slice(0, SAMPLE_STREAMS),
        intervalMs: this.#intervalMs,
      },
      'backfill failing',
    );
    this.#streams.clear();
    this.#attempts = 0;
    return true;
  }
}
