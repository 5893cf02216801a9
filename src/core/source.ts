/**
 * What the pipeline needs from an upstream (one venue's pool, src/upstream/pool.ts).
 * Nothing venue-specific crosses this line: adapters turn frames into Candles and report liveness.
 */
import type { Candle, StreamRef } from './candle.ts';
import type { BreakerState, ConnState, QualityGrade } from './status.ts';

/** Breaker names on the status stream and in metrics (`connector_circuit_breaker_state{name}`). */
export function wsBreakerName(venue: string): string {
  return `${venue}.ws`;
}
export function restBreakerName(venue: string): string {
  return `${venue}.rest`;
}

export interface SourceHandlers {
  /** Every parsed candle, closed or open, in socket order. Called on the hot path: must not throw. */
  candle(candle: Candle): void;
  /**
   * A stream became live again after an interruption (its socket was lost, it went stale, the venue
   * cut the connection, the breaker recovered). The pipeline checks for missed closed candles and
   * backfills them. Not called for make-before-break rotations that lost nothing.
   */
  resync(stream: StreamRef, reason: string): void;
}

export interface ConnectionSnapshot {
  readonly id: string;
  readonly state: ConnState;
  readonly quality: QualityGrade;
  readonly streams: number;
  readonly liveStreams: number;
  readonly ageMs: number;
  /** Wall-clock ms of the last frame, undefined before the first. */
  readonly lastMessageAt: number | undefined;
}

/** A REST-polled venue's poller (src/upstream/poller.ts): what it has done, for /ready and metrics. */
export interface PollSnapshot {
  /** Streams whose poll has been answered at least once. */
  readonly streamsPolled: number;
  /** Wall-clock ms of the last answered poll (any stream), undefined before the first. */
  readonly lastPollAt: number | undefined;
  /**
   * The polled venue's latency: from a candle's close to the poller handing it on, for each stream's
   * newest candle, the largest of them (ms); 0 before the first candle. A stream that delivers nothing
   * shows as stale instead.
   */
  readonly lagMs: number;
  /** Streams whose poll is due now (queued, or waiting at the REST gate and pacing) or in flight. */
  readonly due: number;
  /** Monotonic counters: polls answered, polls failed, re-asks because REST had not sealed a candle yet. */
  readonly polls: number;
  readonly failures: number;
  readonly lagRetries: number;
}

export interface UpstreamSnapshot {
  readonly venue: string;
  readonly connections: readonly ConnectionSnapshot[];
  readonly streamsConfigured: number;
  readonly streamsLive: number;
  readonly staleStreams: readonly string[];
  readonly lastMessageAt: number | undefined;
  readonly breaker: BreakerState;
  readonly paused: boolean;
  /** Present for a REST-polled venue (no sockets: `connections` is empty by design). */
  readonly poll?: PollSnapshot;
}

/** Monotonic counters; metrics copy them on scrape. */
export interface UpstreamStats {
  readonly messages: number;
  readonly bytes: number;
  readonly candles: number;
  readonly parseErrors: number;
  /** Frames naming a stream this daemon did not subscribe (counted, skipped; the parser's one counter). */
  readonly unknownStreamFrames: number;
  readonly connectionAttempts: number;
  readonly connectionErrors: number;
  readonly reconnections: number;
  readonly rotations: number;
  readonly staleEvents: number;
}

export interface UpstreamSource {
  readonly venue: string;
  /** Open the initial connections and subscribe every configured stream; resolves once sockets are opening (not necessarily live). */
  start(): Promise<void>;
  /** Stop reading from every socket (TCP backpressure). Liveness/staleness timers are suspended while paused. Idempotent. */
  pause(): void;
  /** Resume reading. Idempotent. */
  resume(): void;
  /** Close every socket and clear every timer. Idempotent. */
  close(): Promise<void>;
  snapshot(): UpstreamSnapshot;
  stats(): UpstreamStats;
}
