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
  'sink.state': 'info',
  'sink.shedding': 'warn',
  'sink.gap': 'warn',
  'relay.client.open': 'debug',
  'relay.client.close': 'debug',
  'relay.client.rejected': 'info',
  'relay.slow-consumer': 'warn',
  'relay.client.error': 'debug',
  lifecycle: 'info',
};

/** Log every status event as one structured line: `{"level":"warn","event":"stream.stale",...}`. */
export function logStatus(status: StatusStream, log: Logger): Disposable {
  return status.subscribe((event) => {
    let level = LEVEL[event.type];
    if (event.type === 'backfill' && event.outcome !== 'ok') level = 'warn';
    if (event.type === 'ratelimit' && event.kind === '418') level = 'error';
    if (event.type === 'connection.state' && event.to === 'failed') level = 'error';
    if (event.type === 'sink.state' && event.to === 'failing') level = 'warn';
    // Candles a sink without catch-up will never have.
    if (event.type === 'sink.gap' && !event.catchUp) level = 'error';
    const { type, ...fields } = event;
    log[level]({ event: type, ...fields }, type);
  });
}
