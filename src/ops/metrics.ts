/**
 * The Prometheus registry (contract §6). Two feeds, no hot-path cost:
 *  - Figures the components already count (messages, candles, queue depths, relay bytes, the latency
 *    recorder) are read on scrape in `collect()`: gauges are set, counters are advanced by the delta
 *    since the previous scrape. Nothing here is called per message.
 *  - State transitions (breaker changes, backfill outcomes, rate limits, connection state changes,
 *    queue blocking time) come from the status stream, one event each.
 * Labels are bounded: venue, state, outcome, name, scope, kind, sink. Never a symbol or a stream.
 * The registry is this module's own (no prom-client global), so tests and a second instance are isolated.
 */
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { BreakerState, Disposable, SinkState, StatusStream } from '../core/status.ts';
import type { UpstreamSnapshot, UpstreamStats } from '../core/source.ts';
import type { BackfillStats, PipelineStats, RelayStats, SinkStats, VenueRestStats } from '../core/stats.ts';
import type { LatencyRecorder } from '../core/latency.ts';
import { CONN_STATES, countByState, evaluateReadiness } from './readiness.ts';
import type { OpsSources } from './sources.ts';
import { wsBreakerName } from '../core/source.ts';

declare module 'prom-client' {
  // Present at runtime since prom-client 13 (lib/histogram.js) and preferred by Registry.metrics(),
  // but missing from its type declarations.
  interface Histogram<T extends string = string> {
    getForPromString(): ReturnType<Histogram<T>['get']>;
  }
}

export interface MetricsOptions {
  readonly status: StatusStream;
  readonly sources: OpsSources;
  readonly config: Pick<Config, 'health'> & Partial<Pick<Config, 'shard'>>;
  /** Node process metrics (process_*, nodejs_*). Default true. */
  readonly collectDefault?: boolean;
  /** For connector_build_info; default: the version in package.json. */
  readonly version?: string;
  /** Breakers that report only through status events (e.g. `binance.rest`), exported as closed until they say otherwise. */
  readonly breakerNames?: readonly string[];
  /** Wall clock in ms (REST ban expiry, /ready evaluation). Default Date.now. */
  readonly now?: () => number;
}

export interface Metrics {
  readonly registry: Registry;
  /** Stops listening to the status stream. The registry stays scrapeable (it only reads). */
  dispose(): void;
}

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, open: 1, 'half-open': 2 };
const BACKFILL_OUTCOMES = ['ok', 'partial', 'failed'] as const;
/** Rate-limit kinds we name; anything else is folded into `other` to keep the label bounded. */
const RATE_LIMIT_KINDS = new Set(['429', '418', '403', '1008']);
const SINK_STATES: readonly SinkState[] = ['ok', 'failing', 'stopped'];

/** One consistent read of the sources per scrape (every collect() of one scrape runs in the same tick). */
interface Frame {
  readonly upstreams: readonly UpstreamSnapshot[];
  readonly stats: readonly UpstreamStats[];
  readonly pipeline: PipelineStats;
  readonly backfill: BackfillStats;
  readonly rest: readonly VenueRestStats[];
  readonly relay: RelayStats;
  readonly sinks: readonly SinkStats[];
}

/**
 * A counter whose value is owned elsewhere (a monotonic figure in a stats object): on scrape it is
 * advanced by the delta since the previous scrape. If the source ever goes backwards (a component
 * was replaced), the new value becomes the baseline and the counter does not move, as a counter must not.
 */
class MirroredCounter<L extends string> {
  readonly #counter: Counter<L>;
  readonly #last = new Map<string, number>();

  constructor(counter: Counter<L>) {
    this.#counter = counter;
  }

  set(labels: LabelValues<L>, value: number): void {
    const key = labelKey(labels);
    const last = this.#last.get(key) ?? 0;
    const delta = value - last;
    this.#last.set(key, value);
    this.#counter.inc(labels, delta > 0 && Number.isFinite(delta) ? delta : 0);
  }
}

function labelKey(labels: Readonly<Record<string, string | number | undefined>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
}

/**
 * connector_quote_latency_seconds, exposed straight from the pipeline's LatencyRecorder (plain array
 * increments on the hot path) instead of observing into prom-client per message. Subclassing keeps the
 * registry, HELP/TYPE and formatting prom-client's own; only the values come from the recorder.
 */
class RecorderHistogram extends Histogram {
  readonly #recorder: () => LatencyRecorder;

  constructor(name: string, help: string, registry: Registry, recorder: () => LatencyRecorder) {
    super({ name, help, registers: [registry], buckets: [...recorder().bucketsSeconds] });
    this.#recorder = recorder;
  }

  /** The registry calls this when present; prom-client's own version builds HELP/TYPE from the (empty) base. */
  override async getForPromString(): ReturnType<Histogram['get']> {
    const base = await super.getForPromString();
    const r = this.#recorder();
    const values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }> = [];
    let acc = 0;
    r.bucketsSeconds.forEach((le, i) => {
      acc += r.counts[i] ?? 0;
      values.push({ metricName: `${base.name}_bucket`, labels: { le }, value: acc });
    });
    values.push({ metricName: `${base.name}_bucket`, labels: { le: '+Inf' }, value: r.count });
    values.push({ metricName: `${base.name}_sum`, labels: {}, value: r.sumSeconds });
    values.push({ metricName: `${base.name}_count`, labels: {}, value: r.count });
    return { ...base, values };
  }

  override async get(): ReturnType<Histogram['get']> {
    return this.getForPromString();
  }
}

export function createMetrics(options: MetricsOptions): Metrics {
  const { status, sources, config } = options;
  const now = options.now ?? Date.now;
  const registry = new Registry();
  if (options.collectDefault !== false) collectDefaultMetrics({ register: registry });

  let frame: Frame | undefined;
  const read = (): Frame => {
    if (frame === undefined) {
      frame = {
        upstreams: sources.upstreams(),
        stats: sources.upstreamStats(),
        pipeline: sources.pipeline(),
        backfill: sources.backfill(),
        rest: sources.restStats(),
        relay: sources.relay(),
        sinks: sources.sinks(),
      };
      // prom-client runs every collect() of one scrape synchronously before its first await,
      // so clearing on the next microtask gives each scrape one consistent snapshot.
      queueMicrotask(() => {
        frame = undefined;
      });
    }
    return frame;
  };
  const venueOf = (f: Frame, i: number): string => f.upstreams[i]?.venue ?? `upstream${i}`;
  const registers = [registry];
  /** A counter mirrored from a stats figure on scrape (see MirroredCounter). */
  const mirrored = <L extends string>(name: string, help: string, labelNames: readonly L[], feed: (mirror: MirroredCounter<L>) => void): void => {
    const mirror = new MirroredCounter(
      new Counter<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          feed(mirror);
        },
      }),
    );
  };

  // ---- build info -------------------------------------------------------------------------
  new Gauge({
    name: 'connector_build_info',
    help: 'Build metadata; always 1.',
    labelNames: ['version', 'node'] as const,
    registers,
  }).set({ version: options.version ?? packageVersion(), node: process.version }, 1);

  // Which shard this replica is (contract §10): `sum by (shard) (connector_shard_info)` counts each shard's replicas (2 per HA pair).
  new Gauge({
    name: 'connector_shard_info',
    help: "This replica's shard (CONNECTOR_SHARD / CONNECTOR_SHARD_COUNT); always 1.",
    labelNames: ['shard', 'shards'] as const,
    registers,
  }).set({ shard: String(config.shard?.index ?? 0), shards: String(config.shard?.count ?? 1) }, 1);

  // The container's memory limit as configured (CONNECTOR_MAX_MEMORY_MB, set per overlay to the
  // Deployment's limit), so "memory near limit" is one self-contained ratio with process_resident_memory_bytes.
  new Gauge({
    name: 'connector_memory_limit_bytes',
    help: 'Memory limit the daemon runs under (CONNECTOR_MAX_MEMORY_MB).',
    registers,
  }).set(config.health.maxMemoryBytes);

  // ---- readiness ---------------------------------------------------------------------------
  new Gauge({
    name: 'connector_ready',
    help: '1 when /ready answers 200, else 0.',
    registers,
    collect() {
      this.set(evaluateReadiness(sources, config, now()).ready ? 1 : 0);
    },
  });

  // ---- upstream: snapshots -------------------------------------------------------------------
  new Gauge({
    name: 'connector_active_connections',
    help: 'Upstream WebSocket connections in state connected.',
    labelNames: ['venue'] as const,
    registers,
    collect() {
      for (const u of read().upstreams) this.set({ venue: u.venue }, countByState(u).connected);
    },
  });
  new Gauge({
    name: 'connector_connections',
    help: 'Upstream WebSocket connections by state.',
    labelNames: ['venue', 'state'] as const,
    registers,
    collect() {
      for (const u of read().upstreams) {
        const by = countByState(u);
        for (const state of CONN_STATES) this.set({ venue: u.venue, state }, by[state]);
      }
    },
  });
  new Gauge({
    name: 'connector_streams_configured',
    help: 'Upstream streams (symbol x interval) configured.',
    labelNames: ['venue'] as const,
    registers,
    collect() {
      for (const u of read().upstreams) this.set({ venue: u.venue }, u.streamsConfigured);
    },
  });
  new Gauge({
    name: 'connector_streams_live',
    help: 'Upstream streams currently delivering.',
    labelNames: ['venue'] as const,
    registers,
    collect() {
      for (const u of read().upstreams) this.set({ venue: u.venue }, u.streamsLive);
    },
  });
  new Gauge({
    name: 'connector_streams_stale',
    help: 'Upstream streams silent past CONNECTOR_STALE_STREAM_MS (names in /ready and the log).',
    labelNames: ['venue'] as const,
    registers,
    collect() {
      for (const u of read().upstreams) this.set({ venue: u.venue }, u.staleStreams.length);
    },
  });
  new Gauge({
    name: 'connector_last_message_timestamp_seconds',
    help: 'Unix time of the last upstream frame; 0 before the first.',
    labelNames: ['venue'] as const,
    registers,
    collect() {
      for (const u of read().upstreams) this.set({ venue: u.venue }, u.lastMessageAt === undefined ? 0 : u.lastMessageAt / 1000);
    },
  });
  new Gauge({
    name: 'connector_upstream_paused',
    help: '1 while upstream reading is paused for backpressure.',
    labelNames: ['venue'] as const,
    registers,
    collect() {
      for (const u of read().upstreams) this.set({ venue: u.venue }, u.paused ? 1 : 0);
    },
  });

  // REST-polled venues (upstream/poller.ts): only they have `poll`, so only they have these series.
  const polledGauge = (name: string, help: string, pick: (p: NonNullable<UpstreamSnapshot['poll']>) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['venue'] as const,
      registers,
      collect() {
        for (const u of read().upstreams) if (u.poll !== undefined) this.set({ venue: u.venue }, pick(u.poll));
      },
    });
  };
  polledGauge('connector_poll_streams', 'Streams of a REST-polled venue whose poll has been answered at least once.', (p) => p.streamsPolled);
  polledGauge('connector_poll_last_timestamp_seconds', 'Unix time of the last answered poll of a REST-polled venue; 0 before the first.', (p) => (p.lastPollAt ?? 0) / 1000);
  polledGauge('connector_poll_lag_seconds', "A REST-polled venue's latency: candle close to hand-on of each stream's newest candle, the largest.", (p) => p.lagMs / 1000);
  polledGauge('connector_poll_due_streams', 'Streams of a REST-polled venue whose poll is due or in flight.', (p) => p.due);
  const polledCounter = (name: string, help: string, pick: (p: NonNullable<UpstreamSnapshot['poll']>) => number): void => {
    mirrored(name, help, ['venue'] as const, (mirror) => {
      for (const u of read().upstreams) if (u.poll !== undefined) mirror.set({ venue: u.venue }, pick(u.poll));
    });
  };
  polledCounter('connector_polls_total', 'Polls of a REST-polled venue answered.', (p) => p.polls);
  polledCounter('connector_poll_failures_total', 'Polls of a REST-polled venue that failed (retried with back-off).', (p) => p.failures);
  polledCounter('connector_poll_lag_retries_total', 'Polls asked again because REST had not sealed the candle yet.', (p) => p.lagRetries);

  // Circuit breakers: the upstream snapshot is authoritative for its venue's breaker; other
  // breakers (e.g. REST) are known only from their transition events.
  const breakerStates = new Map<string, BreakerState>();
  new Gauge({
    name: 'connector_circuit_breaker_state',
    help: 'Circuit breaker state: 0 closed, 1 open, 2 half-open.',
    labelNames: ['name'] as const,
    registers,
    collect() {
      // A polled venue has no socket breaker: its snapshot shows its REST breaker, exported by that name.
      for (const u of read().upstreams) if (u.poll === undefined) breakerStates.set(wsBreakerName(u.venue), u.breaker);
      for (const [name, state] of breakerStates) this.set({ name }, BREAKER_VALUE[state]);
    },
  });
  const breakerTransitions = new Counter({
    name: 'connector_circuit_breaker_transitions_total',
    help: 'Circuit breaker transitions, by breaker and the state entered.',
    labelNames: ['name', 'state'] as const,
    registers,
  });

  // ---- upstream: counters ------------------------------------------------------------------
  const upstreamCounter = (name: string, help: string, pick: (s: UpstreamStats) => number): void => {
    mirrored(name, help, ['venue'] as const, (mirror) => {
      const f = read();
      f.stats.forEach((s, i) => {
        mirror.set({ venue: venueOf(f, i) }, pick(s));
      });
    });
  };
  upstreamCounter('connector_upstream_messages_total', 'Upstream WebSocket frames received.', (s) => s.messages);
  upstreamCounter('connector_upstream_received_bytes_total', 'Upstream WebSocket payload bytes received.', (s) => s.bytes);
  upstreamCounter('connector_upstream_candles_total', 'Kline events parsed from upstream frames.', (s) => s.candles);
  upstreamCounter('connector_parse_errors_total', 'Upstream frames that failed to parse.', (s) => s.parseErrors);
  upstreamCounter('connector_unknown_stream_frames_total', 'Upstream frames naming a stream that was not subscribed (skipped).', (s) => s.unknownStreamFrames);
  upstreamCounter('connector_connection_attempts_total', 'Upstream WebSocket connection attempts.', (s) => s.connectionAttempts);
  upstreamCounter('connector_connection_errors_total', 'Upstream WebSocket connection errors.', (s) => s.connectionErrors);
  upstreamCounter('connector_reconnections_total', 'Upstream WebSocket reconnections after a lost or failed socket.', (s) => s.reconnections);
  upstreamCounter('connector_rotations_total', 'Planned make-before-break socket replacements.', (s) => s.rotations);
  upstreamCounter('connector_stale_stream_events_total', 'Times a stream went stale.', (s) => s.staleEvents);

  const connTransitions = new Counter({
    name: 'connector_connection_state_changes_total',
    help: 'Upstream connection state transitions, by the state entered.',
    labelNames: ['venue', 'state'] as const,
    registers,
  });
  const rateLimits = new Counter({
    name: 'connector_rate_limit_events_total',
    help: 'Rate-limit signals from a venue (429, 418 ban, 403 firewall, a rate-limit close such as 1008).',
    labelNames: ['venue', 'scope', 'kind'] as const,
    registers,
  });
  for (const u of sources.upstreams()) {
    for (const scope of ['ws', 'rest'] as const) for (const kind of [...RATE_LIMIT_KINDS, 'other']) rateLimits.inc({ venue: u.venue, scope, kind }, 0);
  }

  // ---- pipeline ----------------------------------------------------------------------------
  const pipelineGauge = (name: string, help: string, pick: (p: PipelineStats) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(pick(read().pipeline));
      },
    });
  };
  const pipelineCounter = (name: string, help: string, pick: (p: PipelineStats) => number): void => {
    mirrored(name, help, [], (mirror) => {
      mirror.set({}, pick(read().pipeline));
    });
  };
  mirrored('connector_quotes_processed_total', 'Candles handed to the sinks, by kind (closed / open).', ['kind'] as const, (mirror) => {
    const p = read().pipeline;
    mirror.set({ kind: 'closed' }, p.processedClosed);
    mirror.set({ kind: 'open' }, p.processedOpen);
  });
  new RecorderHistogram(
    'connector_quote_latency_seconds',
    'Internal latency from upstream frame arrival to hand-off to the sinks.',
    registry,
    () => sources.pipeline().latency,
  );
  pipelineGauge('connector_queue_depth_closed', 'Closed candles waiting in the FIFO.', (p) => p.closedDepth);
  pipelineGauge('connector_queue_capacity_closed', 'Closed-candle FIFO bound (CONNECTOR_CLOSED_QUEUE_MAXSIZE).', (p) => p.closedCapacity);
  pipelineGauge('connector_queue_depth_open', 'Open candles waiting in the latest-wins queue.', (p) => p.openDepth);
  pipelineGauge('connector_queue_capacity_open', 'Open-candle queue bound (CONNECTOR_OPEN_QUEUE_MAXSIZE).', (p) => p.openCapacity);
  pipelineGauge('connector_queue_blocked', '1 while the closed FIFO is full and upstream reading is paused.', (p) => (p.blocked ? 1 : 0));
  pipelineCounter('connector_queue_blocking_events_total', 'Times the closed FIFO filled and upstream reading was paused.', (p) => p.blockingEvents);
  pipelineCounter('connector_duplicates_filtered_total', 'Duplicate candles dropped by deduplication.', (p) => p.duplicates);
  pipelineCounter('connector_open_updates_skipped_total', 'Open-candle updates superseded (latest-wins) or evicted at the bound.', (p) => p.openSkipped);
  const blockedSeconds = new Counter({
    name: 'connector_queue_blocked_seconds_total',
    help: 'Time upstream reading spent paused on a full closed FIFO (counted when it resumes).',
    registers,
  });

  // ---- REST backfill -----------------------------------------------------------------------
  const backfills = new Counter({
    name: 'connector_rest_backfills_total',
    help: 'REST backfills of gaps, by outcome.',
    labelNames: ['outcome'] as const,
    registers,
  });
  for (const outcome of BACKFILL_OUTCOMES) backfills.inc({ outcome }, 0);
  const backfillCounter = (name: string, help: string, pick: (b: BackfillStats) => number): void => {
    mirrored(name, help, [], (mirror) => {
      mirror.set({}, pick(read().backfill));
    });
  };
  backfillCounter('connector_rest_candles_recovered_total', 'Closed candles recovered over REST.', (b) => b.candlesRecovered);
  backfillCounter('connector_rest_holes_total', 'Candles REST could not provide (the venue never had them); logged, never invented.', (b) => b.holes);
  // Per venue: each has its own REST client, IP budget and gate.
  const restCounter = (name: string, help: string, pick: (r: VenueRestStats) => number): void => {
    mirrored(name, help, ['venue'] as const, (mirror) => {
      for (const r of read().rest) mirror.set({ venue: r.venue }, pick(r));
    });
  };
  restCounter('connector_rest_requests_total', 'REST requests sent to the venue.', (r) => r.requests);
  restCounter('connector_rest_rate_limited_total', "REST responses that closed the venue's IP-wide gate (429/418/403).", (r) => r.rateLimited);
  new Gauge({
    name: 'connector_rest_banned',
    help: "1 while a venue's REST ban (418) or firewall block (403) holds.",
    labelNames: ['venue'] as const,
    registers,
    collect() {
      for (const r of read().rest) this.set({ venue: r.venue }, r.bannedUntil !== undefined && r.bannedUntil > now() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'connector_rest_used_weight',
    help: 'REST weight used this minute, as the venue last reported it (e.g. X-MBX-USED-WEIGHT-1M).',
    labelNames: ['venue'] as const,
    registers,
    collect() {
      for (const r of read().rest) this.set({ venue: r.venue }, r.usedWeight1m);
    },
  });
  new Gauge({
    name: 'connector_rest_pending_streams',
    help: 'Streams waiting for a backfill.',
    registers,
    collect() {
      this.set(read().backfill.pendingStreams);
    },
  });

  // ---- relay -------------------------------------------------------------------------------
  new Gauge({
    name: 'connector_relay_clients',
    help: 'Relay WebSocket clients connected.',
    registers,
    collect() {
      this.set(read().relay.clients);
    },
  });
  const relayCounter = (name: string, help: string, pick: (r: RelayStats) => number): void => {
    mirrored(name, help, [], (mirror) => {
      mirror.set({}, pick(read().relay));
    });
  };
  relayCounter('connector_relay_clients_total', 'Relay clients accepted since start.', (r) => r.clientsTotal);
  relayCounter('connector_relay_rejected_total', 'Relay upgrades rejected (auth, client cap, draining).', (r) => r.rejected);
  relayCounter('connector_relay_slow_consumers_total', 'Relay clients cut off for exceeding CONNECTOR_RELAY_MAX_BUFFERED_BYTES.', (r) => r.slowConsumers);
  relayCounter('connector_relay_messages_sent_total', 'Messages sent to relay clients.', (r) => r.messagesSent);
  relayCounter('connector_relay_bytes_sent_total', 'Bytes sent to relay clients.', (r) => r.bytesSent);
  relayCounter('connector_relay_client_errors_total', 'Protocol errors answered to relay clients.', (r) => r.clientErrors);
  relayCounter(
    'connector_relay_budget_cuts_total',
    'Relay clients destroyed because all clients together passed CONNECTOR_RELAY_MAX_TOTAL_BUFFERED_BYTES (largest backlogs first).',
    (r) => r.budgetCuts,
  );
  relayCounter('connector_relay_replayed_candles_total', 'Closed candles sent to relay clients by resume replays (since), from history or REST.', (r) => r.replayedCandles);
  relayCounter('connector_relay_replayed_rest_candles_total', 'Closed candles of resume replays fetched from the venue REST (older than the history).', (r) => r.replayedFromRest);
  new Gauge({
    name: 'connector_relay_history_candles',
    help: 'Closed candles held in the relay resume history, all streams (CONNECTOR_RELAY_HISTORY_CANDLES per stream).',
    registers,
    collect() {
      this.set(read().relay.historyCandles);
    },
  });
  new Gauge({
    name: 'connector_relay_history_bytes',
    help: 'Payload bytes of the closed candles held in the relay resume history.',
    registers,
    collect() {
      this.set(read().relay.historyBytes);
    },
  });
  new Gauge({
    name: 'connector_relay_replays',
    help: 'Stream replays (since) in progress across relay clients.',
    registers,
    collect() {
      this.set(read().relay.replays);
    },
  });
  relayCounter('connector_relay_rate_limited_total', 'Relay clients closed 1008 "Too many requests" (inbound frames past the rate limit).', (r) => r.rateLimited);
  new Gauge({
    name: 'connector_relay_buffered_bytes',
    help: 'Unsent bytes queued on all relay client sockets.',
    registers,
    collect() {
      this.set(read().relay.bufferedBytes);
    },
  });
  new Gauge({
    name: 'connector_relay_buffer_budget_bytes',
    help: 'Relay-wide budget for unsent bytes (CONNECTOR_RELAY_MAX_TOTAL_BUFFERED_BYTES, default a quarter of the heap limit).',
    registers,
    collect() {
      this.set(read().relay.bufferBudgetBytes);
    },
  });
  // From ops/heap.ts via the status stream: 1 while the relay refuses new clients and sheds for it.
  const heapPressure = new Gauge({
    name: 'connector_heap_pressure',
    help: '1 while V8 old-generation use is past 85 % of its limit (until back under 75 %).',
    registers,
  });
  heapPressure.set(0);

  // ---- sinks (every sink but the relay; one label value per configured sink) -----------------
  new Gauge({
    name: 'connector_sink_state',
    help: 'Sink state: 1 for the state it is in (ok, failing, stopped), 0 for the others.',
    labelNames: ['sink', 'state'] as const,
    registers,
    collect() {
      for (const s of read().sinks) for (const state of SINK_STATES) this.set({ sink: s.name, state }, s.state === state ? 1 : 0);
    },
  });
  // `pick` returns undefined for a sink that has no such figure (only broker sinks have SinkCounters):
  // that sink simply has no series.
  const sinkGauge = (name: string, help: string, pick: (s: SinkStats) => number | undefined): void => {
    new Gauge({
      name,
      help,
      labelNames: ['sink'] as const,
      registers,
      collect() {
        for (const s of read().sinks) {
          const v = pick(s);
          if (v !== undefined) this.set({ sink: s.name }, v);
        }
      },
    });
  };
  const sinkCounter = (name: string, help: string, pick: (s: SinkStats) => number | undefined): void => {
    mirrored(name, help, ['sink'] as const, (mirror) => {
      for (const s of read().sinks) {
        const v = pick(s);
        if (v !== undefined) mirror.set({ sink: s.name }, v);
      }
    });
  };
  sinkGauge('connector_sink_pending', 'Candles queued or in flight for a sink.', (s) => s.pending);
  sinkGauge('connector_sink_queue_capacity', "Bound of a sink's closed-candle queue.", (s) => s.capacity);
  sinkGauge('connector_sink_shedding', "1 while a sink's queue is full and its closed candles are shed (ARCHITECTURE.md, Sinks).", (s) => (s.shedding ? 1 : 0));
  sinkCounter('connector_sink_delivered_total', 'Candles a sink has taken.', (s) => s.delivered);
  sinkCounter('connector_sink_errors_total', 'Failed sink deliveries (throws and rejections; every retry counts).', (s) => s.errors);
  sinkCounter('connector_sink_shed_total', "Closed candles not queued for a sink because its queue was full.", (s) => s.shed);
  // A broker sink's own figures (SinkCounters): only the sinks that count them have these series.
  sinkCounter('connector_sink_published_total', 'Candles a broker sink had acknowledged as stored.', (s) => s.counters?.published);
  sinkCounter('connector_sink_duplicates_total', 'Candles a broker sink had acknowledged as duplicates (msg-id window), not stored again.', (s) => s.counters?.duplicates);
  sinkCounter('connector_sink_recovered_total', 'Candles a broker sink fetched from the venue to fill missing ranges (shed, or missed while the broker or the replica was down).', (s) => s.counters?.recovered);
  sinkGauge('connector_sink_inflight', 'Publishes a broker sink has sent and not yet had acknowledged.', (s) => s.counters?.inflight);
  sinkGauge('connector_sink_gap_streams', 'Streams with a shed range a broker sink has not yet filled.', (s) => s.counters?.gaps);
  sinkCounter('connector_sink_conflicts_total', 'Publishes a broker sink had refused because the HA partner stored on the subject first (each resolved by looking again, never stored twice).', (s) => s.counters?.conflicts);
  sinkCounter('connector_sink_holes_total', 'Candles of missing ranges a broker sink filled that the venue does not have (left absent).', (s) => s.counters?.holes);
  sinkGauge('connector_sink_lag_seconds', 'Age of the oldest closed candle a broker sink was given and has not had stored (0: caught up).', (s) => s.counters?.lagSeconds);

  // ---- status stream -----------------------------------------------------------------------
  // Pre-initialise the per-venue transition series so rate() has a zero to start from.
  for (const u of sources.upstreams()) {
    if (u.poll === undefined) breakerStates.set(wsBreakerName(u.venue), u.breaker);
    for (const state of CONN_STATES) connTransitions.inc({ venue: u.venue, state }, 0);
  }
  // Breakers known only from their events (REST) still get a series from the start.
  for (const name of options.breakerNames ?? []) if (!breakerStates.has(name)) breakerStates.set(name, 'closed');
  const subscriptions: Disposable[] = [
    status.on('breaker', (e) => {
      if (!breakerStates.has(e.name)) for (const s of ['closed', 'open', 'half-open'] as const) breakerTransitions.inc({ name: e.name, state: s }, 0);
      breakerStates.set(e.name, e.to);
      breakerTransitions.inc({ name: e.name, state: e.to });
    }),
    status.on('backfill', (e) => {
      backfills.inc({ outcome: e.outcome });
    }),
    status.on('ratelimit', (e) => {
      rateLimits.inc({ venue: e.venue, scope: e.scope, kind: RATE_LIMIT_KINDS.has(e.kind) ? e.kind : 'other' });
    }),
    status.on('connection.state', (e) => {
      connTransitions.inc({ venue: e.venue, state: e.to });
    }),
    status.on('queue.resumed', (e) => {
      blockedSeconds.inc(Math.max(0, e.blockedMs) / 1000);
    }),
    status.on('heap.pressure', (e) => {
      heapPressure.set(e.state === 'high' ? 1 : 0);
    }),
  ];
  for (const name of breakerStates.keys()) for (const s of ['closed', 'open', 'half-open'] as const) breakerTransitions.inc({ name, state: s }, 0);

  return {
    registry,
    dispose() {
      for (const s of subscriptions.splice(0)) s.dispose();
    },
  };
}

function packageVersion(): string {
  // src/ops/ and the shipped bundle's dist/daemon/ (bin/build.ts) are both two levels below the package root.
  try {
    const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') return pkg.version;
  } catch {
    // fall through: a missing package.json only costs the version label
  }
  return 'unknown';
}
