/**
 * The object graph: config → sources → pipeline → sinks, plus the ops surface. main.ts, the demo, the
 * chaos suite, benchmarks and end-to-end tests all start the daemon through `startConnector`, so
 * what they exercise is what ships.
 *
 *   BinancePool ──candle/resync──► Pipeline ──deliver(batch)──► RelayServer (inline)
 *                                             └─offer(batch)──► SinkRunner ─► CandleSink (each its own queue)
 *        ▲ pause/resume ◄─blocked──┘   │ recover(range)
 *        │                             ▼
 *     Binance WS                  BinanceRest (undici) ──► Binance REST
 *
 *   StatusStream ◄── every component's transitions ──► logger, metrics, /ready
 */
import type { WebSocket, ClientOptions } from 'ws';
import type { Dispatcher } from 'undici';
import type { Config } from './config/schema.ts';
import type { CandleSink } from './core/candle.ts';
import { systemClock, type Clock } from './core/clock.ts';
import { StatusStream } from './core/status.ts';
import { restBreakerName } from './core/source.ts';
import { StreamRegistry } from './core/streams.ts';
import { BinancePool } from './binance/pool.ts';
import { BINANCE, registerBinanceStreams } from './binance/protocol.ts';
import { BinanceRest } from './binance/rest.ts';
import { Pipeline } from './pipeline/pipeline.ts';
import type { SinkRetry } from './pipeline/sinks.ts';
import { RelayServer } from './relay/server.ts';
import { createMetrics } from './ops/metrics.ts';
import { createHttpServer } from './ops/http.ts';
import { HeapMonitor, oldGenerationLimit } from './ops/heap.ts';
import type { OpsSources } from './ops/sources.ts';
import { logStatus, type Logger } from './ops/logger.ts';

export interface ConnectorDeps {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly status?: StatusStream;
  readonly wsFactory?: (url: string, options: ClientOptions) => WebSocket;
  readonly restDispatcher?: Dispatcher;
  /** Further sinks after the relay (e.g. a broker publisher), each behind its own runner (see CandleSink). */
  readonly sinks?: readonly CandleSink[];
  /** Back-off of a failing sink's retries (tests shorten it). */
  readonly sinkRetryMs?: SinkRetry;
  readonly collectDefaultMetrics?: boolean;
  /** Gap-recovery retry delays (tests shorten them). */
  readonly gapRetryDelaysMs?: readonly number[];
}

export interface Connector {
  readonly config: Config;
  readonly status: StatusStream;
  readonly registry: StreamRegistry;
  readonly pool: BinancePool;
  readonly rest: BinanceRest;
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
  status.emit({ type: 'lifecycle', phase: 'starting', detail: `${config.symbols.length} symbols x ${config.intervals.length} intervals` });

  const registry = new StreamRegistry();
  const streams = registerBinanceStreams(registry, config.symbols, config.intervals);

  const rest = new BinanceRest({ config, status, log, clock, ...(deps.restDispatcher === undefined ? {} : { dispatcher: deps.restDispatcher }) });

  const relay = new RelayServer({
    config: config.relay,
    status,
    log,
    clock,
    resolve: (name) => registry.get(BINANCE, name),
    heapLimitBytes: oldGenerationLimit(),
  });

  // The pool and the pipeline point at each other (candles one way, pause/resume the other). The
  // pipeline's callbacks run only once candles flow, which is after `upstream` below exists.
  // CONNECTOR_OPEN_QUEUE_MAXSIZE=0 (the seed's "unbounded"): one slot per configured stream, which is
  // all OpenLatest can ever hold, so no open update is evicted (superseded ones are still skipped).
  const pipelineConfig = config.pipeline.openQueueMax === 0 ? { ...config.pipeline, openQueueMax: Math.max(1, registry.size) } : config.pipeline;
  const pipeline = new Pipeline({
    config: pipelineConfig,
    inline: [relay],
    sinks: deps.sinks ?? [],
    status,
    clock,
    recover: rest.fetchRange,
    onBlocked: () => {
      upstream.pause();
    },
    onUnblocked: () => {
      upstream.resume();
    },
    ...(deps.gapRetryDelaysMs === undefined ? {} : { gapRetryDelaysMs: deps.gapRetryDelaysMs }),
    ...(deps.sinkRetryMs === undefined ? {} : { sinkRetryMs: deps.sinkRetryMs }),
  });
  const upstream = new BinancePool({
    config,
    streams,
    registry,
    status,
    log,
    clock,
    handlers: {
      candle: (c) => {
        pipeline.ingest(c);
      },
      resync: (stream) => {
        pipeline.resync(stream);
      },
    },
    ...(deps.wsFactory === undefined ? {} : { wsFactory: deps.wsFactory }),
  });

  let draining = false;
  const sources: OpsSources = {
    upstreams: () => [upstream.snapshot()],
    upstreamStats: () => [upstream.stats()],
    pipeline: () => pipeline.stats(),
    backfill: () => {
      const g = pipeline.gapStats;
      const r = rest.stats();
      return {
        backfills: g.backfills,
        backfillsFailed: g.backfillsFailed,
        candlesRecovered: g.candlesRecovered,
        holes: g.holes,
        requests: r.requests,
        rateLimited: r.rateLimited,
        bannedUntil: r.bannedUntil,
        usedWeight1m: r.usedWeight1m,
        pendingStreams: g.pending,
      };
    },
    relay: () => relay.stats(),
    sinks: () => pipeline.sinkStats(),
    draining: () => draining,
  };

  const metrics = createMetrics({ status, sources, config, collectDefault: deps.collectDefaultMetrics ?? true, breakerNames: [restBreakerName(BINANCE)] });
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
  await upstream.start();
  status.emit({ type: 'lifecycle', phase: 'started', detail: `relay :${relayAddress.port}, http ${httpAddress === undefined ? 'disabled' : `:${httpAddress.port}`}` });

  let stopping: Promise<{ drained: boolean }> | undefined;
  async function shutdown(reason: string): Promise<{ drained: boolean }> {
    if (stopping !== undefined) return stopping;
    stopping = (async () => {
      draining = true; // /ready answers 503 from here on
      status.emit({ type: 'lifecycle', phase: 'draining', detail: reason });
      relay.stopAccepting();
      await upstream.close();
      const started = clock.monotonic();
      // REST stays open while draining: a recovery in flight completes, so the live candles it holds go out.
      // The relay has every candle once the pipeline's queues are empty; the queued sinks get what is left
      // of the grace budget to flush, then are stopped (a dead broker costs the budget, never more).
      const drained = await pipeline.drain(config.shutdownGraceMs);
      await rest.close();
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

  return { config, status, registry, pool: upstream, rest, pipeline, relay, relayAddress, httpAddress, sources, shutdown };
}
