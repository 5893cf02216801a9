/**
 * /ready as a pure function of the daemon's figures (contract §6), so the HTTP route, the
 * `connector_ready` gauge and the tests all agree on one definition.
 *
 * Ready means: not draining, AND for every venue both
 *   - the share of settled connections that are `connected`, and
 *   - the share of configured streams that are live
 * are at least `config.health.readyMinLiveRatio`.
 *
 * "Settled" leaves out sockets that are still `connecting` or already `closed`: a make-before-break
 * rotation opens a new socket beside a working one, and counting it as unhealthy would flap /ready
 * every rotation. A socket that has not connected yet still cannot make a pod ready, because its
 * streams are not live.
 *
 * A REST ban (418, or a 403 firewall block) does NOT fail readiness: live WebSocket data keeps
 * flowing and relay clients keep being served; only gap backfill waits. Failing readiness would pull
 * every pod behind the same egress IP out of the Service at once and turn a backfill problem into a
 * full outage. The ban is shown in the body (`rest.banned`, `reasons`) and grades the status
 * `degraded`; the ConnectorRestBanned alert pages for it.
 *
 * A REST-polled venue (no kline WebSocket, upstream/poller.ts) has no sockets: its connection share
 * counts as whole and its streams' liveness (answered polls, nothing overdue) decides; its poll
 * figures (last poll, lag) are in the body (`poll`).
 *
 * A failing or shedding sink (a broker down, contract §9) does NOT fail readiness either, for the same
 * reason: the relay does not depend on it, every pod would share the broker's outage, and the sink
 * catches up by itself. Each sink's state is in the body (`sinks`) and grades the status `degraded`.
 *
 * Status grade, from the worst venue's ratio r = min(connection share, live share):
 *   r < criticalRatio → `critical`; r < degradedRatio → `degraded`; not ready → at least `degraded`;
 *   ready but with stale streams, a breaker not closed, a REST ban or a sink failing or shedding →
 *   `degraded`; otherwise `ok`.
 *   While draining the status is `draining`.
 */
import type { Config } from '../config/schema.ts';
import type { ConnState, BreakerState } from '../core/status.ts';
import type { UpstreamSnapshot, UpstreamStats } from '../core/source.ts';
import type { SinkCounters, SinkStats, VenueRestStats } from '../core/stats.ts';
import type { OpsSources } from './sources.ts';

export type HealthGrade = 'ok' | 'degraded' | 'critical';
export type ReadyStatus = HealthGrade | 'draining';

/** At most this many stale stream names are listed; `staleStreamCount` always has the full figure. */
export const STALE_STREAMS_LISTED = 20;

export const CONN_STATES: readonly ConnState[] = ['connecting', 'connected', 'disconnected', 'reconnecting', 'suspended', 'failed', 'closed'];

/** One venue in the body's `exchanges` list (the name the body has always had). */
export interface VenueReadiness {
  readonly venue: string;
  readonly status: HealthGrade;
  readonly ready: boolean;
  readonly breaker: BreakerState;
  readonly paused: boolean;
  /** ISO time of the last upstream frame, null before the first. */
  readonly lastMessageAt: string | null;
  readonly lastMessageAgeSeconds: number | null;
  readonly streams: { readonly configured: number; readonly live: number; readonly stale: number; readonly liveRatio: number };
  readonly connections: {
    readonly total: number;
    readonly healthy: number;
    readonly settled: number;
    readonly healthyRatio: number;
    readonly byState: Readonly<Record<ConnState, number>>;
  };
  readonly errors: { readonly connectionErrors: number; readonly parseErrors: number; readonly reconnections: number; readonly staleEvents: number };
  readonly staleStreams: readonly string[];
  readonly staleStreamCount: number;
  /** A REST-polled venue's poller (null for a WebSocket venue); `lastPollAt` ISO, `lagSeconds` its latency. */
  readonly poll: {
    readonly streamsPolled: number;
    readonly lastPollAt: string | null;
    readonly lagSeconds: number;
    readonly due: number;
    readonly polls: number;
    readonly failures: number;
  } | null;
  /** This venue's REST client: its gate (ban) and weight. */
  readonly rest: { readonly banned: boolean; readonly bannedUntil: string | null; readonly usedWeight1m: number; readonly requests: number; readonly rateLimited: number };
}

/** One queued sink (every sink but the relay) as /ready shows it: its SinkStats, with JSON's null for no error. */
export type SinkReadiness = Omit<SinkStats, 'lastError' | 'counters'> & { readonly lastError: string | null; readonly counters: SinkCounters | null };

export interface ReadyBody {
  readonly status: ReadyStatus;
  readonly ready: boolean;
  readonly draining: boolean;
  /** Human-readable causes of not-ready or degraded, most important first. Empty when ok. */
  readonly reasons: readonly string[];
  readonly thresholds: { readonly readyMinLiveRatio: number; readonly degradedRatio: number; readonly criticalRatio: number };
  /** This replica's shard (contract §10): `{ index: 0, count: 1 }` when unsharded. */
  readonly shard: { readonly index: number; readonly count: number };
  /** One entry per configured venue, in CONNECTOR_VENUES order. */
  readonly exchanges: readonly VenueReadiness[];
  readonly queues: {
    readonly closed: { readonly depth: number; readonly capacity: number };
    readonly open: { readonly depth: number; readonly capacity: number };
    readonly blocked: boolean;
    readonly blockingEvents: number;
  };
  readonly rest: {
    readonly banned: boolean;
    readonly bannedUntil: string | null;
    readonly usedWeight1m: number;
    readonly pendingStreams: number;
    readonly backfills: number;
    readonly backfillsFailed: number;
    readonly holes: number;
    readonly rateLimited: number;
  };
  readonly relay: { readonly clients: number; readonly slowConsumers: number; readonly rejected: number };
  readonly sinks: readonly SinkReadiness[];
}

export interface Readiness {
  readonly ready: boolean;
  readonly body: ReadyBody;
}

type HealthConfig = Pick<Config, 'health'> & Partial<Pick<Config, 'shard'>>;

const ZERO_STATS: UpstreamStats = {
  messages: 0,
  bytes: 0,
  candles: 0,
  parseErrors: 0,
  unknownStreamFrames: 0,
  connectionAttempts: 0,
  connectionErrors: 0,
  reconnections: 0,
  rotations: 0,
  staleEvents: 0,
};

/** Pure: reads the sources once and decides. `now` is wall-clock ms (for ban expiry and message age). */
export function evaluateReadiness(sources: OpsSources, config: HealthConfig, now: number = Date.now()): Readiness {
  const { readyMinLiveRatio, degradedRatio, criticalRatio } = config.health;
  const draining = sources.draining();
  const upstreams = sources.upstreams();
  const stats = sources.upstreamStats();
  const pipeline = sources.pipeline();
  const backfill = sources.backfill();
  const relay = sources.relay();
  const sinks = sources.sinks();

  const reasons: string[] = [];
  if (draining) reasons.push('draining: shutdown in progress');

  const rest = sources.restStats();
  const exchanges = upstreams.map((u, i) => venueReadiness(u, stats[i] ?? ZERO_STATS, rest.find((r) => r.venue === u.venue), config, now));
  if (exchanges.length === 0) reasons.push('no upstream configured');

  let worstRatio = exchanges.length === 0 ? 0 : 1;
  for (const ex of exchanges) {
    const r = Math.min(ex.connections.healthyRatio, ex.streams.liveRatio);
    worstRatio = Math.min(worstRatio, r);
    if (ex.connections.healthyRatio < readyMinLiveRatio) {
      reasons.push(
        `${ex.venue}: ${ex.connections.healthy}/${ex.connections.settled} connections healthy (${pct(ex.connections.healthyRatio)} < ${pct(readyMinLiveRatio)})`,
      );
    }
    if (ex.streams.liveRatio < readyMinLiveRatio) {
      reasons.push(`${ex.venue}: ${ex.streams.live}/${ex.streams.configured} streams live (${pct(ex.streams.liveRatio)} < ${pct(readyMinLiveRatio)})`);
    }
  }
  const ratioOk = exchanges.length > 0 && exchanges.every((e) => e.ready);
  const ready = !draining && ratioOk;

  // Degradations that do not fail readiness, listed after the blocking reasons.
  for (const ex of exchanges) {
    if (ex.staleStreamCount > 0) reasons.push(`${ex.venue}: ${ex.staleStreamCount} stale stream(s)`);
    if (ex.breaker !== 'closed') reasons.push(`${ex.venue}: circuit breaker ${ex.breaker}`);
    if (ex.rest.banned) reasons.push(`${ex.venue}: rest banned (418/403) until ${ex.rest.bannedUntil ?? '?'}; backfill paused, live data unaffected`);
  }
  const banned = backfill.bannedUntil !== undefined && backfill.bannedUntil > now;
  if (pipeline.blocked) reasons.push('pipeline: closed queue full, upstream reading paused');
  for (const s of sinks) {
    if (s.state === 'failing') reasons.push(`sink ${s.name}: failing (${s.lastError ?? 'unknown error'}), ${s.pending} candle(s) waiting; relay unaffected`);
    if (s.shedding) reasons.push(`sink ${s.name}: queue full (${s.capacity}), shedding closed candles${s.catchUp ? ' (it catches up)' : ' (lost to it)'}`);
  }

  let status: ReadyStatus;
  if (draining) status = 'draining';
  else if (worstRatio < criticalRatio) status = 'critical';
  else if (worstRatio < degradedRatio || !ratioOk || reasons.length > 0) status = 'degraded';
  else status = 'ok';

  return {
    ready,
    body: {
      status,
      ready,
      draining,
      reasons,
      thresholds: { readyMinLiveRatio, degradedRatio, criticalRatio },
      shard: { index: config.shard?.index ?? 0, count: config.shard?.count ?? 1 },
      exchanges,
      queues: {
        closed: { depth: pipeline.closedDepth, capacity: pipeline.closedCapacity },
        open: { depth: pipeline.openDepth, capacity: pipeline.openCapacity },
        blocked: pipeline.blocked,
        blockingEvents: pipeline.blockingEvents,
      },
      rest: {
        banned,
        bannedUntil: banned ? iso(backfill.bannedUntil) : null,
        usedWeight1m: backfill.usedWeight1m,
        pendingStreams: backfill.pendingStreams,
        backfills: backfill.backfills,
        backfillsFailed: backfill.backfillsFailed,
        holes: backfill.holes,
        rateLimited: backfill.rateLimited,
      },
      relay: { clients: relay.clients, slowConsumers: relay.slowConsumers, rejected: relay.rejected },
      sinks: sinks.map((s) => ({
        name: s.name,
        state: s.state,
        pending: s.pending,
        capacity: s.capacity,
        delivered: s.delivered,
        errors: s.errors,
        shed: s.shed,
        shedding: s.shedding,
        catchUp: s.catchUp,
        lastError: s.lastError ?? null,
        counters: s.counters ?? null,
      })),
    },
  };
}

function venueReadiness(u: UpstreamSnapshot, s: UpstreamStats, r: VenueRestStats | undefined, config: HealthConfig, now: number): VenueReadiness {
  const { readyMinLiveRatio, degradedRatio, criticalRatio } = config.health;
  const byState = countByState(u);
  const total = u.connections.length;
  const healthy = byState.connected;
  const settled = total - byState.connecting - byState.closed;
  // No settled socket: nothing can be delivering yet (startup) or everything is still reconnecting. A
  // polled venue has none by design: its streams' liveness alone decides.
  const healthyRatio = u.poll !== undefined && total === 0 ? 1 : settled > 0 ? healthy / settled : 0;
  // No configured stream cannot happen with a valid config; treat it as fully live rather than divide by zero.
  const liveRatio = u.streamsConfigured > 0 ? Math.min(1, u.streamsLive / u.streamsConfigured) : 1;
  const ready = healthyRatio >= readyMinLiveRatio && liveRatio >= readyMinLiveRatio;
  const ratio = Math.min(healthyRatio, liveRatio);
  const venueBanned = r?.bannedUntil !== undefined && r.bannedUntil > now;
  let status: HealthGrade;
  if (ratio < criticalRatio) status = 'critical';
  else if (ratio < degradedRatio || !ready || u.staleStreams.length > 0 || u.breaker !== 'closed') status = 'degraded';
  else status = 'ok';

  return {
    venue: u.venue,
    status,
    ready,
    breaker: u.breaker,
    paused: u.paused,
    lastMessageAt: u.lastMessageAt === undefined ? null : iso(u.lastMessageAt),
    lastMessageAgeSeconds: u.lastMessageAt === undefined ? null : Math.max(0, (now - u.lastMessageAt) / 1000),
    streams: { configured: u.streamsConfigured, live: u.streamsLive, stale: u.staleStreams.length, liveRatio },
    connections: { total, healthy, settled, healthyRatio, byState },
    errors: {
      connectionErrors: s.connectionErrors,
      parseErrors: s.parseErrors,
      reconnections: s.reconnections,
      staleEvents: s.staleEvents,
    },
    poll:
      u.poll === undefined
        ? null
        : {
            streamsPolled: u.poll.streamsPolled,
            lastPollAt: u.poll.lastPollAt === undefined ? null : iso(u.poll.lastPollAt),
            lagSeconds: u.poll.lagMs / 1000,
            due: u.poll.due,
            polls: u.poll.polls,
            failures: u.poll.failures,
          },
    staleStreams: u.staleStreams.slice(0, STALE_STREAMS_LISTED),
    staleStreamCount: u.staleStreams.length,
    rest: {
      banned: venueBanned,
      bannedUntil: venueBanned ? iso(r.bannedUntil) : null,
      usedWeight1m: r?.usedWeight1m ?? 0,
      requests: r?.requests ?? 0,
      rateLimited: r?.rateLimited ?? 0,
    },
  };
}

export function countByState(u: UpstreamSnapshot): Record<ConnState, number> {
  const byState: Record<ConnState, number> = {
    connecting: 0,
    connected: 0,
    disconnected: 0,
    reconnecting: 0,
    suspended: 0,
    failed: 0,
    closed: 0,
  };
  for (const c of u.connections) byState[c.state]++;
  return byState;
}

function pct(r: number): string {
  return `${Math.round(r * 100)}%`;
}

function iso(ms: number | undefined): string {
  return new Date(ms ?? 0).toISOString();
}
