import { describe, expect, it } from 'vitest';
import { StatusStream } from '../../src/core/status.ts';
import { createMetrics } from '../../src/ops/metrics.ts';
import { FakeSources, HEALTH } from './fake-sources.ts';
import { findPromtool, promtool, PROMTOOL_MISSING } from './promtool.ts';
import { CONTRACT_METRICS } from './contract-metrics.ts';
import { value } from '../helpers/prometheus.ts';

const NOW = 1_700_000_010_000;

function setup(collectDefault = true) {
  const status = new StatusStream();
  const sources = new FakeSources();
  const metrics = createMetrics({ status, sources, config: HEALTH, collectDefault, version: '9.9.9', now: () => NOW });
  return { status, sources, metrics, scrape: () => metrics.registry.metrics() };
}

function families(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

describe('createMetrics', () => {
  it('exposes every contract metric family with its Prometheus type', async () => {
    const { scrape } = setup();
    const fams = families(await scrape());
    for (const name of CONTRACT_METRICS) expect(fams.has(name), name).toBe(true);
    expect(fams.get('connector_quote_latency_seconds')).toBe('histogram');
    expect(fams.get('connector_quotes_processed_total')).toBe('counter');
    expect(fams.get('connector_rest_backfills_total')).toBe('counter');
    expect(fams.get('connector_queue_depth_closed')).toBe('gauge');
    for (const [name, type] of fams) if (name.startsWith('connector_') && type === 'counter') expect(name).toMatch(/_total$/);
  });

  it('uses its own registry, so two instances never collide', async () => {
    const a = setup();
    const b = setup();
    expect(a.metrics.registry).not.toBe(b.metrics.registry);
    expect(await a.scrape()).toContain('connector_ready 1');
    expect(await b.scrape()).toContain('connector_ready 1');
  });

  it('pre-initialises bounded label sets and never labels by symbol', async () => {
    const { scrape, sources } = setup(false);
    sources.setLive(10);
    const text = await scrape();
    for (const outcome of ['ok', 'partial', 'failed']) expect(value(text, `connector_rest_backfills_total{outcome="${outcome}"}`)).toBe(0);
    for (const state of ['connecting', 'connected', 'reconnecting', 'suspended', 'failed'])
      expect(value(text, `connector_connections{venue="binance",state="${state}"}`)).toBeDefined();
    expect(value(text, 'connector_circuit_breaker_state{name="binance.ws"}')).toBe(0);
    expect(text).not.toMatch(/symbol=|stream=|usdt/);
  });

  it('advances stats-fed counters by the delta since the previous scrape and never backwards', async () => {
    const { scrape, sources } = setup(false);
    sources.pipe.processedClosed = 10;
    sources.pipe.processedOpen = 90;
    sources.stats.reconnections = 2;
    sources.stats.unknownStreamFrames = 3;
    sources.rel.bytesSent = 1000;
    let text = await scrape();
    expect(value(text, 'connector_unknown_stream_frames_total{venue="binance"}')).toBe(3);
    expect(value(text, 'connector_quotes_processed_total{kind="closed"}')).toBe(10);
    expect(value(text, 'connector_quotes_processed_total{kind="open"}')).toBe(90);
    expect(value(text, 'connector_reconnections_total{venue="binance"}')).toBe(2);
    expect(value(text, 'connector_relay_bytes_sent_total')).toBe(1000);

    sources.pipe.processedClosed = 15;
    sources.rel.bytesSent = 1500;
    text = await scrape();
    expect(value(text, 'connector_quotes_processed_total{kind="closed"}')).toBe(15);
    expect(value(text, 'connector_relay_bytes_sent_total')).toBe(1500);

    // A replaced component restarting its figures from zero must not make the counter go down.
    sources.rel.bytesSent = 200;
    text = await scrape();
    expect(value(text, 'connector_relay_bytes_sent_total')).toBe(1500);
    sources.rel.bytesSent = 300;
    text = await scrape();
    expect(value(text, 'connector_relay_bytes_sent_total')).toBe(1600);
  });

  it('exposes the latency histogram straight from the LatencyRecorder, with sub-millisecond buckets', async () => {
    const { scrape, sources } = setup(false);
    sources.latency.observeMs(0.03); // ≤ 50 µs
    sources.latency.observeMs(0.2); // ≤ 250 µs
    sources.latency.observeMs(0.9); // ≤ 1 ms
    sources.latency.observeMs(-5); // clock skew: clamped to 0
    sources.latency.observeMs(10_000); // +Inf
    const text = await scrape();
    expect(value(text, 'connector_quote_latency_seconds_bucket{le="0.00005"}')).toBe(2);
    expect(value(text, 'connector_quote_latency_seconds_bucket{le="0.00025"}')).toBe(3);
    expect(value(text, 'connector_quote_latency_seconds_bucket{le="0.001"}')).toBe(4);
    expect(value(text, 'connector_quote_latency_seconds_bucket{le="2.5"}')).toBe(4);
    expect(value(text, 'connector_quote_latency_seconds_bucket{le="+Inf"}')).toBe(5);
    expect(value(text, 'connector_quote_latency_seconds_count')).toBe(5);
    expect(value(text, 'connector_quote_latency_seconds_sum')).toBeCloseTo(10.00113, 6);
  });

  it('follows breaker, backfill, rate-limit and connection transitions from the status stream', async () => {
    const { scrape, status, metrics } = setup(false);
    status.emit({ type: 'breaker', name: 'binance.rest', from: 'closed', to: 'open' });
    status.emit({ type: 'breaker', name: 'binance.rest', from: 'open', to: 'half-open' });
    for (const outcome of ['ok', 'ok', 'partial', 'failed'] as const)
      status.emit({ type: 'backfill', venue: 'binance', stream: 'btcusdt@kline_1m', fromOpenTime: 0, toOpenTime: 60_000, missing: 2, recovered: 2, holes: 0, outcome });
    status.emit({ type: 'ratelimit', venue: 'binance', scope: 'rest', kind: '418', retryAfterMs: 120_000 });
    status.emit({ type: 'ratelimit', venue: 'binance', scope: 'rest', kind: 'weird-new-kind', retryAfterMs: 1 });
    status.emit({ type: 'connection.state', venue: 'binance', connId: 'c1', from: 'connected', to: 'reconnecting', reason: 'closed 1006', streams: 10 });
    status.emit({ type: 'queue.resumed', depth: 10, blockedMs: 1500 });
    let text = await scrape();
    expect(value(text, 'connector_circuit_breaker_state{name="binance.rest"}')).toBe(2);
    expect(value(text, 'connector_circuit_breaker_transitions_total{name="binance.rest",state="open"}')).toBe(1);
    expect(value(text, 'connector_rest_backfills_total{outcome="ok"}')).toBe(2);
    expect(value(text, 'connector_rest_backfills_total{outcome="partial"}')).toBe(1);
    expect(value(text, 'connector_rest_backfills_total{outcome="failed"}')).toBe(1);
    expect(value(text, 'connector_rate_limit_events_total{venue="binance",scope="rest",kind="418"}')).toBe(1);
    expect(value(text, 'connector_rate_limit_events_total{venue="binance",scope="rest",kind="other"}')).toBe(1);
    expect(value(text, 'connector_connection_state_changes_total{venue="binance",state="reconnecting"}')).toBe(1);
    expect(value(text, 'connector_queue_blocked_seconds_total')).toBe(1.5);

    metrics.dispose();
    status.emit({ type: 'backfill', venue: 'binance', stream: 's', fromOpenTime: 0, toOpenTime: 0, missing: 1, recovered: 0, holes: 1, outcome: 'failed' });
    text = await scrape();
    expect(value(text, 'connector_rest_backfills_total{outcome="failed"}')).toBe(1);
  });

  it('reports snapshot gauges: streams, connections by state, breaker, ban, readiness', async () => {
    const { scrape, sources } = setup(false);
    sources.upstreamDown();
    sources.back.bannedUntil = NOW + 1000;
    sources.back.usedWeight1m = 1234;
    sources.pipe.blocked = true;
    const text = await scrape();
    expect(value(text, 'connector_streams_configured{venue="binance"}')).toBe(30);
    expect(value(text, 'connector_streams_live{venue="binance"}')).toBe(0);
    expect(value(text, 'connector_streams_stale{venue="binance"}')).toBe(30);
    expect(value(text, 'connector_active_connections{venue="binance"}')).toBe(0);
    expect(value(text, 'connector_connections{venue="binance",state="reconnecting"}')).toBe(2);
    expect(value(text, 'connector_connections{venue="binance",state="suspended"}')).toBe(1);
    expect(value(text, 'connector_circuit_breaker_state{name="binance.ws"}')).toBe(1);
    expect(value(text, 'connector_rest_banned{venue="binance"}')).toBe(1);
    expect(value(text, 'connector_rest_used_weight{venue="binance"}')).toBe(1234);
    expect(value(text, 'connector_queue_blocked')).toBe(1);
    expect(value(text, 'connector_ready')).toBe(0);
    expect(value(text, 'connector_last_message_timestamp_seconds{venue="binance"}')).toBe(1_700_000_000);
    expect(text).toMatch(/connector_build_info\{version="9\.9\.9",node="v\d+/);
  });

  it('exports each sink\'s state, pending, delivered, errors and shed, labelled by sink alone, while readiness stays 1', async () => {
    const { scrape, sources } = setup(false);
    const broker = sources.addSink('nats', { delivered: 100 });
    sources.addSink('archive', { delivered: 7 });
    let text = await scrape();
    expect(value(text, 'connector_sink_state{sink="nats",state="ok"}')).toBe(1);
    expect(value(text, 'connector_sink_state{sink="nats",state="failing"}')).toBe(0);
    expect(value(text, 'connector_sink_errors_total{sink="nats"}')).toBe(0); // a zero to rate() from
    expect(value(text, 'connector_sink_delivered_total{sink="archive"}')).toBe(7);

    Object.assign(broker, { state: 'failing', errors: 4, pending: 1500, shed: 0, lastError: 'connection refused' });
    text = await scrape();
    expect(value(text, 'connector_sink_state{sink="nats",state="failing"}')).toBe(1);
    expect(value(text, 'connector_sink_state{sink="nats",state="ok"}')).toBe(0);
    expect(value(text, 'connector_sink_errors_total{sink="nats"}')).toBe(4);
    expect(value(text, 'connector_sink_pending{sink="nats"}')).toBe(1500);
    expect(value(text, 'connector_sink_queue_capacity{sink="nats"}')).toBe(10_000);
    expect(value(text, 'connector_ready')).toBe(1);

    Object.assign(broker, { errors: 9, pending: 10_000, shed: 250, shedding: true });
    text = await scrape();
    expect(value(text, 'connector_sink_errors_total{sink="nats"}')).toBe(9);
    expect(value(text, 'connector_sink_shed_total{sink="nats"}')).toBe(250);
    expect(value(text, 'connector_sink_shedding{sink="nats"}')).toBe(1);
    expect(value(text, 'connector_sink_delivered_total{sink="nats"}')).toBe(100);
    expect(text).not.toMatch(/connector_sink_\w+\{[^}]*(symbol|stream)=/);
  });

  it('reads the sources once per scrape, so one scrape is one consistent snapshot', async () => {
    const { scrape, sources } = setup(false);
    sources.upstreamReads = 0;
    await scrape();
    // one frame for the snapshot metrics + one evaluateReadiness for connector_ready
    expect(sources.upstreamReads).toBe(2);
  });

  it('passes promtool check metrics (only prom-client\'s own nodejs_*_total gauges allow-listed)', async (ctx) => {
    if (findPromtool() === undefined) {
      ctx.skip(PROMTOOL_MISSING);
      return;
    }
    const { scrape, sources, status } = setup(true);
    sources.latency.observeMs(0.4);
    sources.pipe.processedClosed = 3;
    sources.addSink('nats', { state: 'failing', errors: 2, pending: 10, lastError: 'down' });
    status.emit({ type: 'breaker', name: 'binance.rest', from: 'closed', to: 'open' });
    const { out } = promtool(['check', 'metrics'], await scrape());
    const problems = out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      // client_js#283: prom-client exports these gauges with a _total suffix.
      .filter((l) => !/^nodejs_active_(handles|requests|resources)_total /.test(l));
    expect(problems).toEqual([]);
  });
});

describe('breaker series', () => {
  it('exports named event-only breakers as closed from the first scrape, then follows their transitions', async () => {
    const status = new StatusStream();
    const metrics = createMetrics({ status, sources: new FakeSources(), config: HEALTH, collectDefault: false, version: '9.9.9', now: () => NOW, breakerNames: ['binance.rest'] });
    let text = await metrics.registry.metrics();
    expect(value(text, 'connector_circuit_breaker_state{name="binance.rest"}')).toBe(0);
    expect(value(text, 'connector_circuit_breaker_state{name="binance.ws"}')).toBe(0);
    status.emit({ type: 'breaker', name: 'binance.rest', from: 'closed', to: 'open' });
    text = await metrics.registry.metrics();
    expect(value(text, 'connector_circuit_breaker_state{name="binance.rest"}')).toBe(1);
    // One series per breaker: the upstream's snapshot and its events use the same name.
    expect(text.match(/^connector_circuit_breaker_state\{/gm)).toHaveLength(2);
    metrics.dispose();
  });
});
