import { afterEach, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { StatusStream } from '../../src/core/status.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { createMetrics, type Metrics } from '../../src/ops/metrics.ts';
import { createHttpServer, type OpsHttpServer } from '../../src/ops/http.ts';
import type { ReadyBody } from '../../src/ops/readiness.ts';
import { FakeSources, HEALTH } from './fake-sources.ts';
import { CONTRACT_METRICS } from './contract-metrics.ts';
import { findPromtool, promtool, PROMTOOL_MISSING } from './promtool.ts';

let app: OpsHttpServer | undefined;
let metrics: Metrics | undefined;

afterEach(async () => {
  await app?.close();
  metrics?.dispose();
  app = undefined;
  metrics = undefined;
});

function setup(maxEventLoopDelayMs?: number) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const log = createLogger('info', sink);
  const sources = new FakeSources();
  metrics = createMetrics({ status: new StatusStream(), sources, config: HEALTH });
  app = createHttpServer({ config: HEALTH, sources, registry: metrics.registry, log, uptimeSeconds: () => 12.5, ...(maxEventLoopDelayMs === undefined ? {} : { maxEventLoopDelayMs }) });
  return { app, sources, lines };
}

async function listen(server: OpsHttpServer): Promise<string> {
  await server.listen({ host: '127.0.0.1', port: 0 });
  const addr = server.server.address() as AddressInfo;
  return `http://127.0.0.1:${addr.port}`;
}

describe('ops HTTP server (inject)', () => {
  it('answers /health 200 with status and uptime', async () => {
    const { app } = setup();
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', uptimeSeconds: 12.5 });
  });

  it('keeps /health 200 while Binance is unreachable and /ready is 503', async () => {
    const { app, sources } = setup();
    sources.upstreamDown();
    expect((await app.inject({ url: '/ready' })).statusCode).toBe(503);
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('answers /ready 200 when live, and 503 once the live share drops below the threshold', async () => {
    const { app, sources } = setup();
    let res = await app.inject({ url: '/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json<ReadyBody>().status).toBe('ok');
    sources.setLive(20); // 20/30 < 0.7
    res = await app.inject({ url: '/ready' });
    expect(res.statusCode).toBe(503);
    const body = res.json<ReadyBody>();
    expect(body.ready).toBe(false);
    expect(body.exchanges[0]?.streams).toMatchObject({ configured: 30, live: 20, stale: 10 });
    sources.setLive(30);
    expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
  });

  it('answers /ready 503 from the moment draining starts, /health still 200', async () => {
    const { app, sources } = setup();
    sources.isDraining = true;
    const res = await app.inject({ url: '/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.json<ReadyBody>().status).toBe('draining');
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('serves /metrics as Prometheus text with every contract metric', async () => {
    const { app } = setup();
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const name of CONTRACT_METRICS) expect(res.body).toContain(`# TYPE ${name} `);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const { app } = setup();
    const res = await app.inject({ url: '/nope?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'not found', method: 'GET', path: '/nope' });
  });

  it('does not log probe and scrape requests', async () => {
    const { app, lines } = setup();
    await app.inject({ url: '/health' });
    await app.inject({ url: '/ready' });
    await app.inject({ url: '/metrics' });
    expect(lines.filter((l) => l.includes('"reqId"'))).toEqual([]);
    await app.inject({ url: '/other' });
    expect(lines.some((l) => l.includes('"reqId"'))).toBe(true); // the capture itself works
  });
});

describe('ops HTTP server under event-loop pressure', () => {
  it('answers /ready 503 after an event-loop stall but keeps /health 200 (no restart loop)', async () => {
    const { app } = setup(20);
    await app.ready();
    // Stall the loop well past the limit; under-pressure's next sample (1 s cadence) sees the delay.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1200);
    let res = await app.inject({ url: '/ready' });
    for (let i = 0; i < 40 && res.statusCode === 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      res = await app.inject({ url: '/ready' });
    }
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'overloaded', ready: false });
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
  });
});

describe('ops HTTP server (real HTTP on port 0)', () => {
  it('serves /health, /ready and /metrics over a socket and flips /ready with the sources', async () => {
    const { app, sources } = setup();
    const base = await listen(app);
    let res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });

    res = await fetch(`${base}/ready`);
    expect(res.status).toBe(200);
    sources.upstream.connections = sources.upstream.connections.map((c) => ({ ...c, state: 'reconnecting' as const }));
    res = await fetch(`${base}/ready`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as ReadyBody).exchanges[0]?.connections.healthy).toBe(0);
    expect((await fetch(`${base}/health`)).status).toBe(200);

    res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('connector_ready 0');
    expect(text).toContain('connector_active_connections{venue="binance"} 0');
  });

  it('serves a scrape that promtool check metrics accepts', async (ctx) => {
    if (findPromtool() === undefined) {
      ctx.skip(PROMTOOL_MISSING);
      return;
    }
    const { app } = setup();
    const base = await listen(app);
    const text = await (await fetch(`${base}/metrics`)).text();
    const problems = promtool(['check', 'metrics'], text)
      .out.split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && !/^nodejs_active_(handles|requests|resources)_total /.test(l));
    expect(problems).toEqual([]);
  });
});
