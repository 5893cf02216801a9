/** Shared set-up for the upstream tests (Binance spot through the venue-agnostic pool): a config from the real schema, a pool wired to recorders. */
import { pino } from 'pino';
import { UpstreamPool } from '../../src/upstream/pool.ts';
import { registerVenueStreams } from '../../src/upstream/venue.ts';
import { binanceSpot } from '../../src/venues/binance/spot.ts';
import type { Candle, StreamRef } from '../../src/core/candle.ts';
import type { Clock } from '../../src/core/clock.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { EnvSchema, type Config } from '../../src/config/schema.ts';
import type { WebSocketFactory } from '../../src/upstream/connection.ts';

/** Small real-time deadlines so socket tests run in a few seconds; every value goes through the schema. */
export function testConfig(wsUrl: string, env: Record<string, string | number | boolean | string[]> = {}): Config {
  return EnvSchema.parse({
    CONNECTOR_BINANCE_WS_URL: wsUrl,
    CONNECTOR_SYMBOLS: ['btcusdt', 'ethusdt'],
    CONNECTOR_INTERVALS: ['1s'],
    CONNECTOR_PING_TIMEOUT_MS: 600,
    CONNECTOR_PONG_TIMEOUT_MS: 300,
    CONNECTOR_MAX_MISSED_PINGS: 3,
    CONNECTOR_STALE_STREAM_MS: 800,
    CONNECTOR_CONNECT_TIMEOUT_MS: 2000,
    CONNECTOR_RECONNECT_BASE_MS: 20,
    CONNECTOR_RECONNECT_MAX_MS: 500,
    CONNECTOR_RECONNECT_JITTER: 0.25,
    CONNECTOR_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: 1,
    CONNECTOR_CIRCUIT_BREAKER_RECOVERY_MAX: 4,
    ...env,
  });
}

export interface Harness {
  readonly pool: UpstreamPool;
  readonly registry: StreamRegistry;
  readonly streams: StreamRef[];
  readonly status: StatusStream;
  readonly events: StatusEvent[];
  readonly candles: Candle[];
  /** `at` = candles delivered before this resync (checks that resync precedes the stream's next candle). */
  readonly resyncs: Array<{ stream: string; reason: string; at: number }>;
  readonly config: Config;
}

export function startHarness(
  config: Config,
  options: { random?: () => number; clock?: Clock; wsFactory?: WebSocketFactory; keepCandles?: boolean } = {},
): Harness {
  const registry = new StreamRegistry();
  const streams = registerVenueStreams(registry, binanceSpot, config.venues[0]!.symbols, config.venues[0]!.intervals);
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const candles: Candle[] = [];
  const resyncs: Array<{ stream: string; reason: string; at: number }> = [];
  const keep = options.keepCandles ?? true;
  let count = 0;
  const pool = new UpstreamPool({
    config,
    venue: binanceSpot,
    wsUrl: config.venues[0]!.wsUrl,
    streams,
    registry,
    status,
    log: pino({ level: 'silent' }),
    handlers: {
      candle: (c) => {
        count++;
        if (keep || candles.length < 10_000) candles.push(c);
      },
      resync: (stream, reason) => {
        resyncs.push({ stream: stream.name, reason, at: count });
      },
    },
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.wsFactory === undefined ? {} : { wsFactory: options.wsFactory }),
    ...(options.random === undefined ? {} : { random: options.random }),
  });
  return { pool, registry, streams, status, events, candles, resyncs, config };
}

/** Poll until `predicate` holds; bounded by `timeoutMs` (then throws with `what`). */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000, stepMs = 10): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(stepMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function eventsOf<T extends StatusEvent['type']>(events: readonly StatusEvent[], type: T): Array<Extract<StatusEvent, { type: T }>> {
  return events.filter((e): e is Extract<StatusEvent, { type: T }> => e.type === type);
}
