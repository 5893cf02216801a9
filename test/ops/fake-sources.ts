/** A fake OpsSources whose figures the tests change between requests. */
import type { ConnectionSnapshot, UpstreamSnapshot, UpstreamStats } from '../../src/core/source.ts';
import type { BackfillStats, PipelineStats, RelayStats, SinkStats, VenueRestStats } from '../../src/core/stats.ts';
import type { ConnState } from '../../src/core/status.ts';
import { LatencyRecorder } from '../../src/core/latency.ts';
import type { OpsSources } from '../../src/ops/sources.ts';
import type { Config } from '../../src/config/schema.ts';

export const HEALTH: Pick<Config, 'health'> = {
  health: { readyMinLiveRatio: 0.7, degradedRatio: 0.5, criticalRatio: 0.3, maxMemoryBytes: 512 * 1024 * 1024 },
};

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function conn(id: string, state: ConnState, streams = 10, liveStreams = state === 'connected' ? streams : 0): ConnectionSnapshot {
  return { id, state, quality: 'good', streams, liveStreams, ageMs: 1000, lastMessageAt: 1_700_000_000_000 };
}

export class FakeSources implements OpsSources {
  upstream: Mutable<UpstreamSnapshot> = {
    venue: 'binance',
    connections: [conn('c1', 'connected'), conn('c2', 'connected'), conn('c3', 'connected')],
    streamsConfigured: 30,
    streamsLive: 30,
    staleStreams: [],
    lastMessageAt: 1_700_000_000_000,
    breaker: 'closed',
    paused: false,
  };
  stats: Mutable<UpstreamStats> = {
    messages: 0,
    bytes: 0,
    candles: 0,
    parseErrors: 0,
    unknownStreamFrames: 0,
    connectionAttempts: 3,
    connectionErrors: 0,
    reconnections: 0,
    rotations: 0,
    staleEvents: 0,
  };
  latency = new LatencyRecorder();
  pipe: Omit<Mutable<PipelineStats>, 'latency'> = {
    closedDepth: 0,
    closedCapacity: 1000,
    openDepth: 0,
    openCapacity: 10000,
    processed: 0,
    processedClosed: 0,
    processedOpen: 0,
    duplicates: 0,
    openSkipped: 0,
    blockingEvents: 0,
    blocked: false,
  };
  back: Mutable<BackfillStats> = {
    backfills: 0,
    backfillsFailed: 0,
    candlesRecovered: 0,
    holes: 0,
    requests: 0,
    rateLimited: 0,
    bannedUntil: undefined,
    usedWeight1m: 0,
    pendingStreams: 0,
  };
  rel: Mutable<RelayStats> = {
    clients: 0,
    historyCandles: 0,
    historyBytes: 0,
    replays: 0,
    replayedCandles: 0,
    replayedFromRest: 0,
    clientsTotal: 0,
    rejected: 0,
    slowConsumers: 0,
    messagesSent: 0,
    bytesSent: 0,
    clientErrors: 0,
    bufferedBytes: 0,
    bufferBudgetBytes: 0,
    budgetCuts: 0,
    rateLimited: 0,
  };
  sinkList: Array<Mutable<SinkStats>> = [];
  isDraining = false;
  /** Counts reads so a test can see one scrape reads the sources once. */
  upstreamReads = 0;

  upstreams(): readonly UpstreamSnapshot[] {
    this.upstreamReads++;
    return [{ ...this.upstream }];
  }
  upstreamStats(): readonly UpstreamStats[] {
    return [{ ...this.stats }];
  }
  pipeline(): PipelineStats {
    return { ...this.pipe, latency: this.latency };
  }
  backfill(): BackfillStats {
    return { ...this.back };
  }
  /** The one venue's REST figures are the backfill's (one venue: the sum is its own). */
  restStats(): readonly VenueRestStats[] {
    const b = this.back;
    return [{ venue: this.upstream.venue, requests: b.requests, rateLimited: b.rateLimited, errors: 0, bannedUntil: b.bannedUntil, usedWeight1m: b.usedWeight1m }];
  }
  relay(): RelayStats {
    return { ...this.rel };
  }
  sinks(): readonly SinkStats[] {
    return this.sinkList.map((s) => ({ ...s }));
  }
  draining(): boolean {
    return this.isDraining;
  }

  /** Make `live` of the configured streams live (and the rest stale). */
  setLive(live: number): void {
    this.upstream.streamsLive = live;
    this.upstream.staleStreams = Array.from({ length: this.upstream.streamsConfigured - live }, (_, i) => `sym${i}usdt@kline_1m`);
  }

  /** Add a queued sink (every sink but the relay) with these figures; returns it for later changes. */
  addSink(name: string, figures: Partial<Mutable<SinkStats>> = {}): Mutable<SinkStats> {
    const s: Mutable<SinkStats> = {
      name,
      state: 'ok',
      pending: 0,
      capacity: 10_000,
      delivered: 0,
      errors: 0,
      shed: 0,
      shedding: false,
      catchUp: true,
      lastError: undefined,
      counters: undefined,
      ...figures,
    };
    this.sinkList.push(s);
    return s;
  }

  /** Binance unreachable: every socket reconnecting, nothing live. */
  upstreamDown(): void {
    this.upstream.connections = [conn('c1', 'reconnecting'), conn('c2', 'reconnecting'), conn('c3', 'suspended')];
    this.upstream.breaker = 'open';
    this.setLive(0);
  }
}
