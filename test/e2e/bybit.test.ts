/**
 * Bybit end to end: the real daemon (startConnector) ingesting `bybit-spot` and `bybit-linear` from
 * their simulators (src/venues/bybit/simulator/) on port 0, read by a real relay client. Bybit has no
 * 1s klines, so the simulators and the daemon's wall clock run at 60x (a 1m candle closes every
 * second); the daemon's monotonic clock stays real. Every closing message of the simulators carries two
 * candles (the closed one and the next one's opening), so every closed candle here came through the
 * several-candles-per-frame path.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/app.ts';
import type { VenueSimulator } from '../../src/simulator/dialect.ts';
import { bybitLinearSimulator, bybitSpotSimulator, bybitTruth } from '../../src/venues/bybit/simulator/index.ts';
import { value } from '../helpers/prometheus.ts';
import { RecordingClient, startVenueDaemon, until } from './harness.ts';

const SPEED = 60;
const MIN = 60_000;
const SPOT = ['BTCUSDT', 'ETHUSDT'];
const LINEAR = ['BTCUSDT'];
const STREAMS = [...SPOT.map((s) => `bybit-spot:${s.toLowerCase()}@kline_1m`), ...LINEAR.map((s) => `bybit-linear:${s.toLowerCase()}@kline_1m`)];

interface Stack {
  readonly spot: VenueSimulator;
  readonly linear: VenueSimulator;
  readonly connector: Connector;
  readonly client: RecordingClient;
  readonly events: string[];
  readonly now: () => number;
  get(path: string): Promise<string>;
}

let stack: Stack | undefined;

afterEach(async () => {
  stack?.client.ws.terminate();
  await stack?.connector.shutdown('test');
  await stack?.spot.close();
  await stack?.linear.close();
  stack = undefined;
});

async function start(env: Record<string, string | number> = {}): Promise<Stack> {
  const t0 = Date.now();
  // Start a little after a minute boundary of the venues' clock.
  const base = Math.floor(t0 / MIN) * MIN + MIN + 5000;
  const now = (): number => base + (Date.now() - t0) * SPEED;
  const spot = await bybitSpotSimulator.start({ host: '127.0.0.1', port: 0, openUpdateMs: 100, now });
  const linear = await bybitLinearSimulator.start({ host: '127.0.0.1', port: 0, openUpdateMs: 100, now });
  const { connector, events } = await startVenueDaemon(
    {
      CONNECTOR_VENUES: 'bybit-spot,bybit-linear',
      CONNECTOR_BYBIT_SPOT_SYMBOLS: SPOT.join(','),
      CONNECTOR_BYBIT_SPOT_WS_URL: spot.wsUrl,
      CONNECTOR_BYBIT_SPOT_REST_URL: spot.restUrl,
      CONNECTOR_BYBIT_LINEAR_SYMBOLS: LINEAR.join(',').toLowerCase(),
      CONNECTOR_BYBIT_LINEAR_WS_URL: linear.wsUrl,
      CONNECTOR_BYBIT_LINEAR_REST_URL: linear.restUrl,
      ...env,
    },
    now,
  );
  const client = new RecordingClient(`ws://127.0.0.1:${connector.relayAddress.port}/stream?streams=${STREAMS.join('/')}`);
  await client.opened;
  const http = connector.httpAddress;
  const get = async (path: string): Promise<string> => (await fetch(`http://127.0.0.1:${http?.port ?? 0}${path}`)).text();
  return (stack = { spot, linear, connector, client, events, now, get });
}

/** Closed candles of one relay stream against the simulator's truth: none missing (outside `holes`), none twice, in order, none wrong. */
function audit(s: Stack, stream: string, holes: ReadonlySet<number> = new Set()) {
  const [venue, rest] = stream.split(':') as [string, string];
  const symbol = rest.split('@')[0]?.toUpperCase() ?? '';
  const category = venue === 'bybit-spot' ? 'spot' : 'linear';
  const closed = s.client.messages.filter((m) => m.stream === stream && m.x);
  let missing = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let wrong = 0;
  let holesDelivered = 0;
  closed.forEach((m, i) => {
    const truth = bybitTruth(category, symbol, '1m', m.t);
    const k = m.k;
    if (k.o !== truth.o || k.h !== truth.h || k.l !== truth.l || k.c !== truth.c || k.v !== truth.v || k.q !== truth.q || k.T !== truth.T || k.n !== null || k.s !== symbol || k.i !== '1m') wrong++;
    if (holes.has(m.t)) holesDelivered++;
    const prev = closed[i - 1]?.t;
    if (prev === undefined) return;
    if (m.t === prev) duplicated++;
    else if (m.t < prev) outOfOrder++;
    else for (let t = prev + MIN; t < m.t; t += MIN) if (!holes.has(t)) missing++;
  });
  return { count: closed.length, missing, duplicated, outOfOrder, wrong, holesDelivered };
}

function explain(s: Stack, stream: string): string {
  const times = s.client.closedCandles(stream);
  return `${stream}: ${JSON.stringify(times.map((t) => (t - (times[0] ?? 0)) / MIN))}\n${s.events.slice(-40).join('\n')}`;
}

const CLEAN = { missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0, holesDelivered: 0 };

describe('Bybit end to end', () => {
  it('delivers bybit-spot and bybit-linear closed candles in the shared kline shape (null where Bybit publishes nothing), each once and in order, across a spot outage recovered over Get Kline', async () => {
    const s = await start();
    s.client.ws.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 1 }));
    await until(() => s.client.other.length >= 1, 'LIST_SUBSCRIPTIONS answered');
    expect(s.client.other[0]).toEqual({ result: expect.arrayContaining(STREAMS) as unknown, id: 1 });
    await until(() => STREAMS.every((st) => s.client.closedCandles(st).length >= 3), 'three closed candles on every stream', 30_000);

    // One closed event, key for key: Binance's shape, Bybit's values, null for trade ids, count, taker volumes and B.
    const m = s.client.messages.find((x) => x.stream === 'bybit-spot:btcusdt@kline_1m' && x.x);
    const truth = bybitTruth('spot', 'BTCUSDT', '1m', m?.t ?? 0);
    expect(m?.k).toEqual({ t: m?.t, T: truth.T, s: 'BTCUSDT', i: '1m', f: null, L: null, o: truth.o, c: truth.c, h: truth.h, l: truth.l, v: truth.v, n: null, x: true, q: truth.q, V: null, Q: null, B: null });

    // The spot upstream goes away for a few candles (refused reconnects); linear carries on.
    const restBefore = s.spot.counters.restRequests;
    s.spot.faults.refuseConnections(3);
    s.spot.faults.dropAll();
    const seen = s.client.closedCandles(STREAMS[0] ?? '').length;
    await until(() => s.client.closedCandles(STREAMS[0] ?? '').length >= seen + 6, 'spot candles again after the outage', 30_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${explain(s, STREAMS[0] ?? '')}`);
    });
    expect(s.spot.counters.connectionsRefused).toBe(3);
    expect(s.spot.counters.restRequests).toBeGreaterThan(restBefore);
    expect(s.connector.pipeline.gapStats.candlesRecovered).toBeGreaterThan(0);
    for (const stream of STREAMS) expect(audit(s, stream), explain(s, stream)).toMatchObject(CLEAN);
    // The daemon stayed within what Bybit allows.
    expect(s.spot.counters.restInsideRetryAfter).toBe(0);
    expect(s.spot.counters.maxInboundPerSecondSeen).toBeLessThanOrEqual(bybitSpotSimulator.auditLimits.maxInboundPerSecond);
  });

  it('recovers a stream that went silent on a live socket, and leaves a hole absent and counted', async () => {
    const s = await start();
    await until(() => STREAMS.every((st) => s.client.closedCandles(st).length >= 2), 'two closed candles on every stream', 30_000);
    // ETHUSDT never had two candles a little ahead; BTCUSDT's stream is stalled for ~4 candles.
    const at = Math.floor(s.now() / MIN) * MIN + 3 * MIN;
    const holes = new Set([at, at + MIN]);
    s.spot.faults.hole('ETHUSDT', '1m', at, at + 2 * MIN);
    s.spot.faults.stallStreams(['kline.1.BTCUSDT'], 4000);
    await until(() => s.client.closedCandles('bybit-spot:ethusdt@kline_1m').some((t) => t > at + 2 * MIN), 'ETHUSDT past the hole', 30_000);
    const btcSeen = s.client.closedCandles('bybit-spot:btcusdt@kline_1m').length;
    await until(() => s.client.closedCandles('bybit-spot:btcusdt@kline_1m').length >= btcSeen + 4, 'BTCUSDT after its stall', 30_000);
    expect(audit(s, 'bybit-spot:ethusdt@kline_1m', holes), explain(s, 'bybit-spot:ethusdt@kline_1m')).toMatchObject(CLEAN);
    expect(audit(s, 'bybit-spot:btcusdt@kline_1m'), explain(s, 'bybit-spot:btcusdt@kline_1m')).toMatchObject(CLEAN);
    expect(s.connector.pipeline.gapStats.holes).toBeGreaterThanOrEqual(2);
    expect(value(await s.get('/metrics'), 'connector_rest_holes_total')).toBeGreaterThanOrEqual(2);
  });

  it('counts malformed frames per venue and skips them, losing nothing', async () => {
    const s = await start();
    await until(() => STREAMS.every((st) => s.client.closedCandles(st).length >= 2), 'two closed candles on every stream', 30_000);
    s.spot.faults.garbage(4);
    const seen = s.client.closedCandles(STREAMS[0] ?? '').length;
    await until(() => s.client.closedCandles(STREAMS[0] ?? '').length >= seen + 2, 'two more closed candles', 30_000);
    const metrics = await s.get('/metrics');
    const sockets = s.spot.sockets().length;
    expect(value(metrics, 'connector_parse_errors_total{venue="bybit-spot"}')).toBe(4 * sockets);
    expect(value(metrics, 'connector_parse_errors_total{venue="bybit-linear"}')).toBe(0);
    for (const stream of STREAMS) expect(audit(s, stream), explain(s, stream)).toMatchObject(CLEAN);
  });

  it('honours a 403: no REST request inside the 10-minute ban, the ban on /ready and /metrics, the other venue unaffected', async () => {
    // The 60x clock would age the gap past the hole horizon within seconds; it must wait for REST instead.
    // (The spot candles held behind the banned gap would keep shutdown waiting out its grace.)
    const s = await start({ CONNECTOR_HOLE_HORIZON_MS: 86_400_000, CONNECTOR_SHUTDOWN_GRACE_MS: 500 });
    await until(() => STREAMS.every((st) => s.client.closedCandles(st).length >= 2), 'two closed candles on every stream', 30_000);
    s.spot.faults.restErrors(1, 403);
    s.spot.faults.refuseConnections(2);
    s.spot.faults.dropAll();
    await until(() => (s.spot.counters.restStatuses[403] ?? 0) >= 1, 'the 403', 30_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${s.events.slice(-30).join('\n')}`);
    });
    // Requests sent before the 403 came back may still be on their way (there are two streams' gaps, and
    // up to rest.concurrency in flight): count from when the daemon holds the ban and every request it
    // sent has reached the simulator. A daemon that ignores the ban retries within seconds of venue time.
    await until(async () => {
      const metrics = await s.get('/metrics');
      const sent = value(metrics, 'connector_rest_requests_total{venue="bybit-spot"}');
      return value(metrics, 'connector_rest_banned{venue="bybit-spot"}') === 1 && s.spot.counters.restRequests === sent;
    }, 'the ban held, every request sent arrived', 30_000);
    const requests = s.spot.counters.restRequests;
    const linearSeen = s.client.closedCandles('bybit-linear:btcusdt@kline_1m').length;
    // Three real seconds: three minutes of the venues' clock, far inside the ban.
    await until(() => s.client.closedCandles('bybit-linear:btcusdt@kline_1m').length >= linearSeen + 3, 'linear candles during the ban', 30_000);
    expect(s.spot.counters.restRequests).toBe(requests);
    expect(s.spot.counters.restInsideRetryAfter).toBe(0);

    const ready = JSON.parse(await s.get('/ready')) as { exchanges: Array<{ venue: string; rest: { banned: boolean; bannedUntil: string | null; rateLimited: number } }> };
    const spotReady = ready.exchanges.find((e) => e.venue === 'bybit-spot');
    expect(spotReady?.rest).toMatchObject({ banned: true, rateLimited: 1 });
    const until10 = Date.parse(spotReady?.rest.bannedUntil ?? '') - s.now();
    expect(until10).toBeGreaterThan(9 * MIN);
    expect(until10).toBeLessThanOrEqual(10 * MIN);
    expect(ready.exchanges.find((e) => e.venue === 'bybit-linear')?.rest.banned).toBe(false);
    const metrics = await s.get('/metrics');
    expect(value(metrics, 'connector_rest_banned{venue="bybit-spot"}')).toBe(1);
    expect(value(metrics, 'connector_rest_banned{venue="bybit-linear"}')).toBe(0);
    expect(value(metrics, 'connector_rate_limit_events_total{venue="bybit-spot",scope="rest",kind="403"}')).toBe(1);
    expect(audit(s, 'bybit-linear:btcusdt@kline_1m')).toMatchObject(CLEAN);
  });

  it('reports per-venue figures on /metrics and /ready', async () => {
    const s = await start();
    await until(() => STREAMS.every((st) => s.client.closedCandles(st).length >= 2), 'two closed candles on every stream', 30_000);
    const metrics = await s.get('/metrics');
    expect(value(metrics, 'connector_active_connections{venue="bybit-spot"}')).toBe(1);
    expect(value(metrics, 'connector_active_connections{venue="bybit-linear"}')).toBe(1);
    expect(value(metrics, 'connector_streams_configured{venue="bybit-spot"}')).toBe(2);
    expect(value(metrics, 'connector_streams_live{venue="bybit-linear"}')).toBe(1);
    expect(value(metrics, 'connector_upstream_candles_total{venue="bybit-spot"}')).toBeGreaterThan(0);
    const ready = JSON.parse(await s.get('/ready')) as { ready: boolean; exchanges: Array<{ venue: string; ready: boolean; streams: { configured: number; live: number } }> };
    expect(ready.ready).toBe(true);
    expect(ready.exchanges.map((e) => [e.venue, e.ready, e.streams.configured, e.streams.live])).toEqual([
      ['bybit-spot', true, 2, 2],
      ['bybit-linear', true, 1, 1],
    ]);
  });
});
