/**
 * /ready and /metrics with more than one venue (issue 13 point 2): one `exchanges` entry per venue
 * (its connections, streams, breaker, REST gate), readiness failing on the venue that is down and
 * naming it, a `venue` label on every per-upstream metric and none naming a symbol.
 */
import { describe, expect, it } from 'vitest';
import type { UpstreamSnapshot, UpstreamStats } from '../../src/core/source.ts';
import type { VenueRestStats } from '../../src/core/stats.ts';
import { StatusStream } from '../../src/core/status.ts';
import { createMetrics } from '../../src/ops/metrics.ts';
import { evaluateReadiness } from '../../src/ops/readiness.ts';
import { FakeSources, HEALTH, conn } from './fake-sources.ts';

const NOW = 1_700_000_010_000;

/** Binance spot healthy beside a Binance USD-M whose sockets are all reconnecting and whose REST is banned. */
class TwoVenues extends FakeSources {
  usdm: UpstreamSnapshot = {
    venue: 'binance-usdm',
    connections: [conn('u1', 'reconnecting', 4), conn('u2', 'reconnecting', 4)],
    streamsConfigured: 8,
    streamsLive: 0,
    staleStreams: ['binance-usdm:btcusdt@kline_1m'],
    lastMessageAt: 1_700_000_000_000,
    breaker: 'open',
    paused: false,
  };
  usdmStats: UpstreamStats = { ...this.stats, reconnections: 7, connectionErrors: 3 };
  usdmRest: VenueRestStats = { venue: 'binance-usdm', requests: 40, rateLimited: 2, errors: 0, bannedUntil: NOW + 120_000, usedWeight1m: 2390 };

  override upstreams(): readonly UpstreamSnapshot[] {
    return [...super.upstreams(), this.usdm];
  }
  override upstreamStats(): readonly UpstreamStats[] {
    return [...super.upstreamStats(), this.usdmStats];
  }
  override restStats(): readonly VenueRestStats[] {
    return [...super.restStats(), this.usdmRest];
  }
}

describe('venues in /ready and /metrics', () => {
  it('lists every venue in /ready and fails readiness on the one that is down, naming it', () => {
    const r = evaluateReadiness(new TwoVenues(), HEALTH, NOW);
    expect(r.ready).toBe(false);
    expect(r.body.exchanges.map((e) => [e.venue, e.ready])).toEqual([
      ['binance', true],
      ['binance-usdm', false],
    ]);
    const usdm = r.body.exchanges[1];
    expect(usdm?.connections.byState).toMatchObject({ reconnecting: 2 });
    expect(usdm?.errors).toMatchObject({ reconnections: 7, connectionErrors: 3 });
    expect(usdm?.rest).toEqual({ banned: true, bannedUntil: new Date(NOW + 120_000).toISOString(), usedWeight1m: 2390, requests: 40, rateLimited: 2 });
    expect(r.body.exchanges[0]?.rest.banned).toBe(false);
    expect(r.body.reasons[0]).toMatch(/^binance-usdm: 0\/2 connections healthy/);
    expect(r.body.reasons).toContain('binance-usdm: circuit breaker open');
    expect(r.body.reasons.some((x) => x.startsWith('binance-usdm: rest banned'))).toBe(true);
    expect(r.body.reasons.some((x) => x.startsWith('binance:'))).toBe(false);
  });

  it('labels every per-upstream metric with its venue, and no metric with a symbol or stream', async () => {
    const sources = new TwoVenues();
    const status = new StatusStream();
    const metrics = createMetrics({ status, sources, config: HEALTH, collectDefault: false, now: () => NOW });
    status.emit({ type: 'ratelimit', venue: 'binance-usdm', scope: 'rest', kind: '429', retryAfterMs: 1000 });
    status.emit({ type: 'connection.state', venue: 'binance-usdm', connId: 'u1', from: 'connected', to: 'reconnecting', reason: 'x', streams: 4 });
    const text = await metrics.registry.metrics();
    for (const line of [
      'connector_active_connections{venue="binance"} 3',
      'connector_active_connections{venue="binance-usdm"} 0',
      'connector_streams_configured{venue="binance-usdm"} 8',
      'connector_streams_stale{venue="binance-usdm"} 1',
      'connector_connections{venue="binance-usdm",state="reconnecting"} 2',
      'connector_reconnections_total{venue="binance-usdm"} 7',
      'connector_rest_banned{venue="binance"} 0',
      'connector_rest_banned{venue="binance-usdm"} 1',
      'connector_rest_used_weight{venue="binance-usdm"} 2390',
      'connector_rest_requests_total{venue="binance-usdm"} 40',
      'connector_rate_limit_events_total{venue="binance-usdm",scope="rest",kind="429"} 1',
      'connector_connection_state_changes_total{venue="binance-usdm",state="reconnecting"} 1',
      'connector_circuit_breaker_state{name="binance-usdm.ws"} 1',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
    expect(text).not.toMatch(/exchange=/);
    expect(text).not.toMatch(/(symbol|stream)="/);
    expect(text).not.toMatch(/btcusdt/);
    metrics.dispose();
  });
});
