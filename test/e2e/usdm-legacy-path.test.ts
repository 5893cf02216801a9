/**
 * USD-M's legacy root paths (issue 13 point 4; exchanges.md §6, binance-public-data#472): since
 * 2026-04 `wss://fstream.binance.com/stream?streams=…` accepts the connection and the subscription and
 * then sends no kline frame at all. A daemon configured with the old URL (no `/market`) has open,
 * "connected" sockets whose subscriptions were acknowledged; it must call that staleness, not health:
 * the streams are stale in the snapshot, /ready answers 503 and its reasons name the venue's stale
 * streams. The control case, the same daemon on `/market`, is ready, so the test can tell the two apart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startConnector, type Connector } from '../../src/app.ts';
import { EnvSchema } from '../../src/config/schema.ts';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { until } from './harness.ts';

let stack: { sim: BinanceSimulator; connector?: Connector } | undefined;

afterEach(async () => {
  await stack?.connector?.shutdown('test');
  await stack?.sim.close();
  stack = undefined;
});

interface ReadyBody {
  ready: boolean;
  reasons: string[];
  exchanges: Array<{ venue: string; streams: { configured: number; live: number; stale: number }; staleStreams: string[] }>;
}

async function daemonOn(wsUrl: (sim: BinanceSimulator) => string): Promise<{ sim: BinanceSimulator; connector: Connector }> {
  const sim = await BinanceSimulator.start({ host: '127.0.0.1', port: 0, profile: 'binance-usdm' });
  stack = { sim };
  const config = EnvSchema.parse({
    CONNECTOR_VENUES: 'binance-usdm',
    CONNECTOR_BINANCE_USDM_SYMBOLS: 'btcusdt,ethusdt',
    CONNECTOR_BINANCE_USDM_INTERVALS: '1m',
    CONNECTOR_BINANCE_USDM_WS_URL: wsUrl(sim),
    CONNECTOR_BINANCE_USDM_REST_URL: sim.restUrl,
    CONNECTOR_RELAY_HOST: '127.0.0.1',
    CONNECTOR_RELAY_PORT: 0,
    CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
    CONNECTOR_WSS_HEALTH_CHECK_PORT: 0,
    // USD-M sends an open update every 250 ms: 1.5 s of silence is far past anything a live stream does.
    CONNECTOR_STALE_STREAM_MS: 1500,
    CONNECTOR_LOG_LEVEL: 'silent',
  });
  const connector = await startConnector(config, { log: pino({ level: 'silent' }), collectDefaultMetrics: false });
  stack.connector = connector;
  return { sim, connector };
}

async function ready(connector: Connector): Promise<{ status: number; body: ReadyBody }> {
  const res = await fetch(`http://127.0.0.1:${connector.httpAddress?.port ?? 0}/ready`);
  return { status: res.status, body: (await res.json()) as ReadyBody };
}

describe('USD-M on its silent legacy root path', () => {
  it('reports the acknowledged but silent streams as stale and /ready as 503, naming them, where /market is ready', async () => {
    const { sim, connector } = await daemonOn((s) => s.wsRootUrl);
    const names = ['binance-usdm:btcusdt@kline_1m', 'binance-usdm:ethusdt@kline_1m'];
    // The socket is up and the simulator holds the subscriptions (acknowledged, as Binance does), on a route that never delivers.
    await until(() => sim.sockets().some((s) => s.streams.length === 2), 'the daemon subscribed on the legacy path', 10_000);
    expect(sim.sockets().every((s) => !s.delivers && s.path.startsWith('/stream'))).toBe(true);
    await until(() => connector.venues[0]?.pool.snapshot().staleStreams.length === 2, 'both streams stale', 10_000);

    expect([...(connector.venues[0]?.pool.snapshot().staleStreams ?? [])].sort()).toEqual(names);
    const { status, body } = await ready(connector);
    expect(status).toBe(503);
    expect(body.ready).toBe(false);
    expect(body.reasons).toContain('binance-usdm: 2 stale stream(s)');
    expect(body.reasons.some((r) => r.startsWith('binance-usdm: 0/2 streams live'))).toBe(true);
    const usdm = body.exchanges.find((e) => e.venue === 'binance-usdm');
    expect(usdm?.streams).toMatchObject({ configured: 2, live: 0, stale: 2 });
    expect([...(usdm?.staleStreams ?? [])].sort()).toEqual(names);
    expect(sim.counters.closedKlinesSent + sim.counters.klineEventsSent).toBe(0);
  }, 30_000);

  it('is ready on the /market route with the same configuration otherwise', async () => {
    const { connector } = await daemonOn((s) => s.wsUrl);
    await until(() => connector.venues[0]?.pool.snapshot().streamsLive === 2, 'both streams live', 10_000);
    const { status, body } = await ready(connector);
    expect(status).toBe(200);
    expect(body.exchanges.find((e) => e.venue === 'binance-usdm')?.staleStreams).toEqual([]);
  }, 30_000);
});
