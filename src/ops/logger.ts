/** pino, JSON lines on stdout, and the bridge that turns every status event into one log line. */
import { pino, type Logger, type Level } from 'pino';
import type { StatusEvent, StatusStream, Disposable } from '../core/status.ts';

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

/** Log every status event as one structured line: `{"level":"warn","event":"stream.stale",...}`. */
export function logStatus(status: StatusStream, log: Logger, options: LogStatusOptions = {}): Disposable {
  const rejected = new Sampler(options.now ?? (() => performance.now()));
  return status.subscribe((event) => {
    let level = LEVEL[event.type];
    if (event.type === 'backfill' && event.outcome !== 'ok') level = 'warn';
    if (event.type === 'ratelimit' && event.kind === '418') level = 'error';
    if (event.type === 'connection.state' && event.to === 'failed') level = 'error';
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
}
