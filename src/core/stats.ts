/** Point-in-time figures the ops layer (metrics, /ready) reads from the pipeline and the relay. */
import type { LatencyRecorder } from './latency.ts';
import type { SinkState } from './status.ts';

export interface PipelineStats {
  readonly closedDepth: number;
  readonly closedCapacity: number;
  readonly openDepth: number;
  readonly openCapacity: number;
  /** Candles handed to sinks (closed + open). */
  readonly processed: number;
  readonly processedClosed: number;
  readonly processedOpen: number;
  /** Duplicates filtered by the (symbol, interval, open time) deduplicator and watermarks. */
  readonly duplicates: number;
  /** Open updates superseded before delivery (latest-wins) or evicted at the open-queue bound. */
  readonly openSkipped: number;
  /** Times the closed queue reached its bound and upstream reading was paused. */
  readonly blockingEvents: number;
  readonly blocked: boolean;
  /** Frame arrival → handed to sinks. */
  readonly latency: LatencyRecorder;
}

export interface BackfillStats {
  readonly backfills: number;
  readonly backfillsFailed: number;
  readonly candlesRecovered: number;
  readonly holes: number;
  readonly requests: number;
  readonly rateLimited: number;
  /** Ban (418) or WAF (403) in force until this wall-clock ms, if any. */
  readonly bannedUntil: number | undefined;
  readonly usedWeight1m: number;
  readonly pendingStreams: number;
}

/** One venue's REST client (src/upstream/rest.ts): its requests, the gate's state and its weight. */
export interface VenueRestStats {
  readonly venue: string;
  readonly requests: number;
  readonly rateLimited: number;
  readonly errors: number;
  /** Ban (Binance: 418) or WAF block (403) in force until this wall-clock ms, if any. */
  readonly bannedUntil: number | undefined;
  /** The venue's own figure when it reports one (Binance X-MBX-USED-WEIGHT-1M), else our count this minute. */
  readonly usedWeight1m: number;
}

export interface RelayStats {
  readonly clients: number;
  /** Unsent bytes queued on all clients' sockets (reconciled when read). */
  readonly bufferedBytes: number;
  /** The relay-wide budget for them (CONNECTOR_RELAY_MAX_TOTAL_BUFFERED_BYTES or its heap-derived default). */
  readonly bufferBudgetBytes: number;
  /** Clients destroyed because the relay-wide budget was exceeded (largest backlogs first). */
  readonly budgetCuts: number;
  /** Clients closed 1008 "Too many requests". */
  readonly rateLimited: number;
  readonly clientsTotal: number;
  readonly rejected: number;
  readonly slowConsumers: number;
  readonly messagesSent: number;
  readonly bytesSent: number;
  readonly clientErrors: number;
  /** Closed candles held in the relay's resume history, all streams (relay/history.ts). */
  readonly historyCandles: number;
  /** Payload bytes of those candles. */
  readonly historyBytes: number;
  /** Stream replays (`since`) in progress, all clients. */
  readonly replays: number;
  /** Candles sent by replays since start (from history or REST). */
  readonly replayedCandles: number;
  /** Of those, candles fetched from REST. */
  readonly replayedFromRest: number;
}

/** One queued sink (every sink but the relay), from its runner. */
export interface SinkStats {
  readonly name: string;
  readonly state: SinkState;
  /** Candles queued (closed and open) plus the batch in flight. */
  readonly pending: number;
  /** Bound of its closed-candle queue (`CandleSink.maxPending`). */
  readonly capacity: number;
  /** Candles the sink has taken (its deliver returned or resolved). */
  readonly delivered: number;
  /** Failed deliver attempts (throws and rejections; every retry counts). */
  readonly errors: number;
  /** Closed candles not queued because its queue was full (see the overflow policy). */
  readonly shed: number;
  /** True while an overflow episode lasts (queue full, not yet back to half). */
  readonly shedding: boolean;
  /** True when the sink fills shed ranges itself (`onGap`); false: shed candles are lost to it. */
  readonly catchUp: boolean;
  readonly lastError: string | undefined;
  /** What the sink itself counts (`CandleSink.counters`), undefined for a sink that counts nothing. */
  readonly counters: SinkCounters | undefined;
}

/** A broker sink's own figures (the JetStream sink's; contract §9: published, duplicates, lag). */
export interface SinkCounters {
  /** Candles the broker stored (acknowledged, not a duplicate). */
  readonly published: number;
  /** Candles the broker acknowledged as duplicates (its msg-id window) and did not store again. */
  readonly duplicates: number;
  /** Publishes sent and not yet acknowledged. */
  readonly inflight: number;
  /** Candles fetched from the venue (REST) to fill missing ranges (shed by the runner, or missed while the broker or the replica was down). */
  readonly recovered: number;
  /** Streams with a shed range not yet filled. */
  readonly gaps: number;
  /** Publishes the broker refused because another writer (the HA partner) had stored on the subject since: each is a fresh look, never a duplicate. */
  readonly conflicts: number;
  /** Candles of filled ranges the venue does not have (the one hole rule, core/recovery.ts): left absent. */
  readonly holes: number;
  /** Seconds since the oldest closed candle the sink was given (or knows missing) and has not had stored closed; 0 when it is caught up. */
  readonly lagSeconds: number;
}
