/**
 * The object graph: config → sources → pipeline → sinks, plus the ops surface. main.ts, the demo, the
 * chaos suite, benchmarks and end-to-end tests all start the daemon through `startConnector`, so
 * what they exercise is what ships.
 *
 *   UpstreamPool × venue ──candle/resync──► Pipeline ──deliver(batch)──► RelayServer (inline)
 *                                                       └─offer(batch)──► SinkRunner ─► CandleSink (each its own queue)
 *        ▲ pause/resume ◄──────blocked──────┘   │ recover(range) → the stream's venue
 *        │                                      ▼
 *     venue WS                       RestClient × venue (undici, RestGate per origin) ──► venue REST
 *
 *   One pool and one REST client per configured venue (CONNECTOR_VENUES), each from its adapter in
 *   src/venues; a venue without a kline WebSocket gets a RestPoller over its REST client in place of
 *   the pool (upstream/poller.ts). Everything from the pipeline on is shared and venue-agnostic.
 *
 *   StatusStream ◄── every component's transitions ──► logger, metrics, /ready
 */
import type { WebSocketFactory } from './upstream/connection.ts';
import type { Dispatcher } from 'undici';
import type { Config } from './config/schema.ts';
import type { CandleSink } from './core/candle.ts';
import { systemClock, type Clock } from './core/clock.ts';
import { StatusStream } from './core/status.ts';
import { restBreakerName, type SourceHandlers } from './core/source.ts';
import type { Candle, StreamRef } from './core/candle.ts';
import type { RecoveredRange } from './core/recovery.ts';
import { RestGate } from './core/rest-gate.ts';
import { StreamRegistry } from './core/streams.ts';
import { shardLabel } from './core/shards.ts';
import type { UpstreamSource } from './core/source.ts';
import { UpstreamPool } from './upstream/pool.ts';
import { RestPoller } from './upstream/poller.ts';
import { RestClient } from './upstream/rest.ts';
import { NextOpenFinalizer } from './upstream/finalizer.ts';
import { registerVenueStreams, type AnyVenueAdapter, type VenueConfig } from './upstream/venue.ts';
import { requireVenue } from './venues/index.ts';
import { Pipeline } from './pipeline/pipeline.ts';
import type { SinkRetry } from './pipeline/sinks.ts';
import { RelayServer } from './relay/server.ts';
import { ReplayLane } from './relay/replay-lane.ts';
import { createMetrics } from './ops/metrics.ts';
import { createHttpServer } from './ops/http.ts';
import { HeapMonitor, oldGenerationLimit } from './ops/heap.ts';
import type { OpsSources } from './ops/sources.ts';
import { logStatus, type Logger } from './ops/logger.ts';
import { HISTORY_BYTES_PER_CANDLE } from './relay/history.ts';

export interface ConnectorDeps {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly status?: StatusStream;
  readonly wsFactory?: WebSocketFactory;
  readonly restDispatcher?: Dispatcher;
  /** Further sinks after the relay (e.g. a broker publisher), each behind its own runner (see CandleSink). */
  readonly sinks?: readonly CandleSink[];
  /** Back-off of a failing sink's retries (tests shorten it). */
  readonly sinkRetryMs?: SinkRetry;
  readonly collectDefaultMetrics?: boolean;
  /** Gap-recovery retry delays (tests shorten them). */
  readonly gapRetryDelaysMs?: readonly number[];
}

/** One configured venue's running parts. */
export interface VenueRuntime {
  readonly adapter: AnyVenueAdapter;
  readonly config: VenueConfig;
  readonly streams: readonly StreamRef[];
  /** Its WebSocket pool, or for a venue without a kline WebSocket its REST poller (no sockets at all). */
  readonly pool: UpstreamSource;
  readonly rest: RestClient;
}

export interface Connector {
  readonly config: Config;
  readonly status: StatusStream;
  readonly registry: StreamRegistry;
  /** Every configured venue, in CONNECTOR_VENUES order. */
  readonly venues: readonly VenueRuntime[];
  /** The first configured venue's pool (or poller) and REST client (most deployments run one venue). */
  readonly pool: UpstreamSource;
  readonly rest: RestClient;
  readonly pipeline: Pipeline;
  readonly relay: RelayServer;
  readonly relayAddress: { host: string; port: number };
  /** Where /health, /ready and /metrics listen; undefined with CONNECTOR_WSS_HEALTH_CHECK_ENABLED=false. */
  readonly httpAddress: { host: string; port: number } | undefined;
  readonly sources: OpsSources;
  /** Graceful stop (contract §7). Resolves with whether every queued closed candle was delivered in time. Idempotent. */
  shutdown(reason: string): Promise<{ drained: boolean }>;
}

export async function startConnector(config: Config, deps: ConnectorDeps): Promise<Connector> {
  const log = deps.log;
  const clock = deps.clock ?? systemClock;
  const status = deps.status ?? new StatusStream();
  const logging = logStatus(status, log);
  const venueConfigs = config.venues;
  status.emit({
    type: 'lifecycle',
    phase: 'starting',
    detail:
      venueConfigs.map((v) => `${v.id}: ${v.symbols.length} symbols x ${v.intervals.length} intervals`).join('; ') +
      (config.shard.count === 1 ? '' : `; ${shardLabel(config.shard.index, config.shard.count)} (from ${config.shard.from})`),
  });

  const registry = new StreamRegistry();
  // One RestGate per REST origin: two venues on the same origin (one IP budget) share it.
  const gates = new Map<string, RestGate>();
  // Sharded (contract §10): the relay names of the streams other shards own, to point clients there.
  const elsewhere = new Map<string, string>();
  for (const vc of venueConfigs) {
    const adapter = requireVenue(vc.id);
    for (const { symbol, shard } of vc.elsewhere ?? []) for (const spec of adapter.streams([symbol], vc.intervals)) elsewhere.set(spec.name, shardLabel(shard, config.shard.count));
  }
  // A venue none of whose symbols is on this shard gets no pool and no REST client.
  const parts = venueConfigs.filter((vc) => vc.symbols.length > 0).map((vc) => {
    const adapter = requireVenue(vc.id);
    const streams = registerVenueStreams(registry, adapter, vc.symbols, vc.intervals);
    const origin = new URL(vc.restUrl).origin;
    let gate = gates.get(origin);
    if (gate === undefined) gates.set(origin, (gate = new RestGate(clock)));
    const rest = new RestClient({
      config,
      venue: adapter,
      restUrl: vc.restUrl,
      status,
      log,
      clock,
      gate,
      ...(deps.restDispatcher === undefined ? {} : { dispatcher: deps.restDispatcher }),
    });
    return { adapter, config: vc, streams, rest };
  });
  const restByVenue = new Map(parts.map((p) => [p.adapter.id, p.rest]));
  const restFor = (stream: StreamRef): RestClient => {
    const rest = restByVenue.get(stream.venue);
    if (rest === undefined) throw new Error(`no REST client for venue ${stream.venue}`);
    return rest;
  };
  // Resume replays share each venue's REST client (its gate, budgets and breaker) below gap recovery (replay-lane.ts).
  const lane = new ReplayLane();
  const recover = (stream: StreamRef, from: number, toExclusive: number, signal: AbortSignal): Promise<RecoveredRange | readonly Candle[]> =>
    lane.recovery(() => restFor(stream).fetchRange(stream, from, toExclusive, signal));
  const replay = (stream: StreamRef, from: number, toExclusive: number, signal: AbortSignal): Promise<RecoveredRange> =>
    lane.replay(stream.venue, signal, () => restFor(stream).fetchRange(stream, from, toExclusive, signal));

  // The history lives off the JS heap, where the heap-pressure monitor cannot see it: say at start
  // when the configured one would take a large share of the memory budget (1440 candles x 2000
  // streams is ~1.4 GB), so the operator lowers CONNECTOR_RELAY_HISTORY_CANDLES or raises the limit.
  const historyBytes = registry.size * config.relay.historyCandles * HISTORY_BYTES_PER_CANDLE;
  if (historyBytes > config.health.maxMemoryBytes / 2) {
    log.warn(
      { event: 'config.warning', historyBytes, maxMemoryBytes: config.health.maxMemoryBytes, streams: registry.size },
      `CONNECTOR_RELAY_HISTORY_CANDLES=${config.relay.historyCandles} x ${registry.size} streams needs about ${Math.round(historyBytes / 1048576)} MiB ` +
        `of relay history when full, more than half of CONNECTOR_MAX_MEMORY_MB=${Math.round(config.health.maxMemoryBytes / 1048576)}: lower the history or raise the memory limit`,
    );
  }
  const relay = new RelayServer({
    config: config.relay,
    status,
    log,
    clock,
    resolve: (name) => registry.byName(name),
    ...(elsewhere.size === 0 ? {} : { elsewhere: (name: string) => elsewhere.get(name), shardLabel: shardLabel(config.shard.index, config.shard.count) }),
    heapLimitBytes: oldGenerationLimit(),
    replay,
    holeHorizonMs: config.pipeline.holeHorizonMs,
  });

  // The pools and the pipeline point at each other (candles one way, pause/resume the other). The
  // pipeline's callbacks run only once candles flow, which is after `venues` below exists.
  // CONNECTOR_OPEN_QUEUE_MAXSIZE=0 (the seed's "unbounded"): one slot per configured stream, which is
  // all OpenLatest can ever hold, so no open update is evicted (superseded ones are still skipped).
  const pipelineConfig = config.pipeline.openQueueMax === 0 ? { ...config.pipeline, openQueueMax: Math.max(1, registry.size) } : config.pipeline;
  // CONNECTOR_NATS_URL unset: no JetStream sink, no runner, nothing on the hot path (contract §9).
  // Imported only then: the NATS client and its crypto are ~0.5 MB of JS (ARCHITECTURE.md, Performance / Memory).
  const jetStream =
    config.nats === undefined
      ? undefined
      : new (await import('./sinks/jetstream.ts')).JetStreamSink({
          config: config.nats,
          recover,
          history: relay.recentCandles(),
          holeHorizonMs: config.pipeline.holeHorizonMs,
          now: () => clock.now(),
        });
  const pipeline = new Pipeline({
    config: pipelineConfig,
    inline: [relay],
    sinks: jetStream === undefined ? (deps.sinks ?? []) : [...(deps.sinks ?? []), jetStream],
    status,
    clock,
    recover,
    onBlocked: () => {
      for (const v of venues) v.pool.pause();
    },
    onUnblocked: () => {
      for (const v of venues) v.pool.resume();
    },
    ...(deps.gapRetryDelaysMs === undefined ? {} : { gapRetryDelaysMs: deps.gapRetryDelaysMs }),
    ...(deps.sinkRetryMs === undefined ? {} : { sinkRetryMs: deps.sinkRetryMs }),
  });
  const handlers = {
    candle: (c: Candle): void => {
      pipeline.ingest(c);
    },
    resync: (stream: StreamRef): void => {
      pipeline.resync(stream);
    },
  };
  // A venue without a closed flag closes a candle when the next one starts, with REST's final row (finalizer.ts).
  const finalizers: NextOpenFinalizer[] = [];
  const handlersFor = (adapter: AnyVenueAdapter, streams: readonly StreamRef[]): SourceHandlers => {
    if (adapter.source === 'rest-poll' || adapter.ws.closes !== 'next-open') return handlers;
    const opened = (stream: StreamRef, openTime: number): void => {
      pipeline.opened(stream, openTime);
    };
    const f = new NextOpenFinalizer({ inner: handlers, opened, clock, streams });
    finalizers.push(f);
    return f;
  };
  const venues: VenueRuntime[] = parts.map((p) => ({
    ...p,
    // A venue without a kline WebSocket is polled over its REST client instead (poller.ts): no pool, no socket.
    pool:
      p.adapter.source === 'rest-poll'
        ? new RestPoller({
            config,
            venue: p.adapter,
            streams: p.streams,
            fetch: p.rest.fetchRange,
            breaker: () => p.rest.stats().breaker,
            handlers,
            status,
            log,
            clock,
            ...(deps.gapRetryDelaysMs === undefined ? {} : { retryDelaysMs: deps.gapRetryDelaysMs }),
          })
        : new UpstreamPool({
            config,
            venue: p.adapter,
            wsUrl: p.config.wsUrl,
            streams: p.streams,
            registry,
            status,
            log,
            clock,
            handlers: handlersFor(p.adapter, p.streams),
            ...(deps.wsFactory === undefined ? {} : { wsFactory: deps.wsFactory }),
          }),
  }));
  const first = venues[0];
  if (first === undefined) throw new Error('no venue configured');

  let draining = false;
  const sources: OpsSources = {
    upstreams: () => venues.map((v) => v.pool.snapshot()),
    upstreamStats: () => venues.map((v) => v.pool.stats()),
    pipeline: () => pipeline.stats(),
    backfill: () => {
      const g = pipeline.gapStats;
      let requests = 0;
      let rateLimited = 0;
      let usedWeight1m = 0;
      let bannedUntil: number | undefined;
      for (const v of venues) {
        const r = v.rest.stats();
        requests += r.requests;
        rateLimited += r.rateLimited;
        usedWeight1m = Math.max(usedWeight1m, r.usedWeight1m);
        if (r.bannedUntil !== undefined && (bannedUntil === undefined || r.bannedUntil > bannedUntil)) bannedUntil = r.bannedUntil;
      }
      return {
        backfills: g.backfills,
        backfillsFailed: g.backfillsFailed,
        candlesRecovered: g.candlesRecovered,
        holes: g.holes,
        requests,
        rateLimited,
        bannedUntil,
        usedWeight1m,
        pendingStreams: g.pending,
      };
    },
    restStats: () =>
      venues.map((v) => {
        const r = v.rest.stats();
        return { venue: v.adapter.id, requests: r.requests, rateLimited: r.rateLimited, errors: r.errors, bannedUntil: r.bannedUntil, usedWeight1m: r.usedWeight1m };
      }),
    relay: () => relay.stats(),
    sinks: () => pipeline.sinkStats(),
    draining: () => draining,
  };

  const metrics = createMetrics({
    status,
    sources,
    config,
    collectDefault: deps.collectDefaultMetrics ?? true,
    breakerNames: venues.map((v) => restBreakerName(v.adapter.id)),
  });
  // CONNECTOR_WSS_HEALTH_CHECK_ENABLED=false: no ops server at all (contract §2), not one that answers 404.
  const http = config.http.enabled ? createHttpServer({ config, sources, registry: metrics.registry, log }) : undefined;

  // Heap pressure makes the relay shed load before V8 would die, and leaves a warning line if it still does.
  const heap = new HeapMonitor({ status });
  heap.start();
  const relayAddress = await relay.listen();
  let httpAddress: { host: string; port: number } | undefined;
  if (http !== undefined) {
    await http.listen({ host: config.http.host, port: config.http.port });
    const addr = http.server.address();
    httpAddress = { host: config.http.host, port: typeof addr === 'object' && addr !== null ? addr.port : config.http.port };
  }
  for (const v of venues) await v.pool.start();
  for (const f of finalizers) f.start();
  status.emit({ type: 'lifecycle', phase: 'started', detail: `relay :${relayAddress.port}, http ${httpAddress === undefined ? 'disabled' : `:${httpAddress.port}`}` });

  let stopping: Promise<{ drained: boolean }> | undefined;
  async function shutdown(reason: string): Promise<{ drained: boolean }> {
    if (stopping !== undefined) return stopping;
    stopping = (async () => {
      draining = true; // /ready answers 503 from here on
      status.emit({ type: 'lifecycle', phase: 'draining', detail: reason });
      relay.stopAccepting();
      await Promise.all(venues.map((v) => v.pool.close()));
      for (const f of finalizers) f.close();
      const started = clock.monotonic();
      // REST stays open while draining: a recovery in flight completes, so the live candles it holds go out.
      // The relay has every candle once the pipeline's queues are empty; the queued sinks get what is left
      // of the grace budget to flush, then are stopped (a dead broker costs the budget, never more).
      const drained = await pipeline.drain(config.shutdownGraceMs);
      await jetStream?.close();
      await Promise.all(venues.map((v) => v.rest.close()));
      // Clients get what was drained, then serverShutdown and 1001; stragglers are cut when the grace runs out.
      await relay.close(Math.max(1000, config.shutdownGraceMs - (clock.monotonic() - started)));
      await http?.close();
      heap.close();
      metrics.dispose();
      status.emit({ type: 'lifecycle', phase: 'stopped', detail: drained ? 'drained' : 'grace period exceeded' });
      logging.dispose();
      return { drained };
    })();
    return stopping;
  }

  return { config, status, registry, venues, pool: first.pool, rest: first.rest, pipeline, relay, relayAddress, httpAddress, sources, shutdown };
}

