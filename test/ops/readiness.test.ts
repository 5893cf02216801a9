import { describe, expect, it } from 'vitest';
import { evaluateReadiness, STALE_STREAMS_LISTED } from '../../src/ops/readiness.ts';
import { FakeSources, HEALTH, conn } from './fake-sources.ts';

const NOW = 1_700_000_010_000;

describe('evaluateReadiness', () => {
  it('is ready and ok when every connection is healthy and every stream live', () => {
    const r = evaluateReadiness(new FakeSources(), HEALTH, NOW);
    expect(r.ready).toBe(true);
    expect(r.body.status).toBe('ok');
    expect(r.body.reasons).toEqual([]);
    expect(r.body.exchanges[0]?.lastMessageAt).toBe('2023-11-14T22:13:20.000Z');
    expect(r.body.exchanges[0]?.lastMessageAgeSeconds).toBe(10);
  });

  it('stays ready but degraded with a few stale streams, listing them', () => {
    const s = new FakeSources();
    s.setLive(27); // 90 %
    const r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.ready).toBe(true);
    expect(r.body.status).toBe('degraded');
    expect(r.body.exchanges[0]?.staleStreams).toHaveLength(3);
    expect(r.body.reasons.join(' ')).toContain('3 stale stream(s)');
  });

  it('turns not ready exactly when the live share drops below the threshold', () => {
    const s = new FakeSources();
    s.setLive(21); // 70 %: at the threshold
    expect(evaluateReadiness(s, HEALTH, NOW).ready).toBe(true);
    s.setLive(20); // 66.7 %
    const r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.ready).toBe(false);
    expect(r.body.status).toBe('degraded');
    expect(r.body.reasons[0]).toContain('20/30 streams live');
  });

  it('turns not ready when too few settled connections are healthy', () => {
    const s = new FakeSources();
    s.upstream.connections = [conn('c1', 'connected'), conn('c2', 'reconnecting'), conn('c3', 'reconnecting')];
    const r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.ready).toBe(false);
    expect(r.body.exchanges[0]?.connections.byState).toMatchObject({ connected: 1, reconnecting: 2 });
    expect(r.body.reasons[0]).toContain('1/3 connections healthy');
  });

  it('does not count a make-before-break socket that is still connecting against readiness', () => {
    const s = new FakeSources();
    s.upstream.connections = [conn('old', 'connected'), conn('new', 'connecting')];
    expect(evaluateReadiness(s, HEALTH, NOW).ready).toBe(true);
  });

  it('is not ready before any socket has connected', () => {
    const s = new FakeSources();
    s.upstream.connections = [conn('c1', 'connecting')];
    s.setLive(0);
    s.upstream.lastMessageAt = undefined;
    const r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.ready).toBe(false);
    expect(r.body.status).toBe('critical');
    expect(r.body.exchanges[0]?.lastMessageAt).toBeNull();
  });

  it('grades critical below the critical ratio and reports the open breaker', () => {
    const s = new FakeSources();
    s.upstreamDown();
    const r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.ready).toBe(false);
    expect(r.body.status).toBe('critical');
    expect(r.body.exchanges[0]?.breaker).toBe('open');
    expect(r.body.reasons.join(' ')).toContain('circuit breaker open');
  });

  it('is not ready while draining even when everything is live', () => {
    const s = new FakeSources();
    s.isDraining = true;
    const r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.ready).toBe(false);
    expect(r.body.status).toBe('draining');
    expect(r.body.draining).toBe(true);
  });

  it('surfaces a REST ban without failing readiness, and forgets it once expired', () => {
    const s = new FakeSources();
    s.back.bannedUntil = NOW + 60_000;
    let r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.ready).toBe(true);
    expect(r.body.status).toBe('degraded');
    expect(r.body.rest.banned).toBe(true);
    expect(r.body.rest.bannedUntil).toBe(new Date(NOW + 60_000).toISOString());
    expect(r.body.reasons.join(' ')).toContain('banned');
    r = evaluateReadiness(s, HEALTH, NOW + 60_001);
    expect(r.body.rest.banned).toBe(false);
    expect(r.body.status).toBe('ok');
  });

  it('caps the stale stream list but always gives the full count', () => {
    const s = new FakeSources();
    s.upstream.streamsConfigured = 500;
    s.setLive(400);
    const r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.body.exchanges[0]?.staleStreams).toHaveLength(STALE_STREAMS_LISTED);
    expect(r.body.exchanges[0]?.staleStreamCount).toBe(100);
  });

  it('shows each sink\'s state in the body; a failing or shedding sink degrades the status and never fails readiness', () => {
    const s = new FakeSources();
    s.addSink('archive');
    let r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.body.status).toBe('ok');
    expect(r.body.sinks).toEqual([
      { name: 'archive', state: 'ok', pending: 0, capacity: 10_000, delivered: 0, errors: 0, shed: 0, shedding: false, catchUp: true, lastError: null, counters: null },
    ]);
    const nats = s.addSink('nats', { state: 'failing', errors: 12, pending: 10_000, shed: 40, shedding: true, lastError: 'connection refused' });
    r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.ready).toBe(true);
    expect(r.body.status).toBe('degraded');
    expect(r.body.sinks[1]).toMatchObject({ name: 'nats', state: 'failing', errors: 12, shedding: true, lastError: 'connection refused' });
    expect(r.body.reasons).toEqual([
      'sink nats: failing (connection refused), 10000 candle(s) waiting; relay unaffected',
      'sink nats: queue full (10000), shedding closed candles (it catches up)',
    ]);
    Object.assign(nats, { state: 'ok', shedding: false, pending: 0 });
    r = evaluateReadiness(s, HEALTH, NOW);
    expect(r.body.status).toBe('ok');
    expect(r.body.reasons).toEqual([]);
  });

  it('reports queue depths, error counts and relay figures', () => {
    const s = new FakeSources();
    s.pipe.closedDepth = 12;
    s.pipe.openDepth = 34;
    s.stats.connectionErrors = 5;
    s.stats.parseErrors = 2;
    s.rel.clients = 7;
    const b = evaluateReadiness(s, HEALTH, NOW).body;
    expect(b.queues.closed).toEqual({ depth: 12, capacity: 1000 });
    expect(b.queues.open).toEqual({ depth: 34, capacity: 10000 });
    expect(b.exchanges[0]?.errors).toMatchObject({ connectionErrors: 5, parseErrors: 2 });
    expect(b.relay.clients).toBe(7);
  });
});
