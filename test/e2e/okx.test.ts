/**
 * OKX end to end (issue 16): the real daemon (startConnector) against the OKX simulator on port 0,
 * with real relay clients. Spot `BTC-USDT` and perpetual `BTC-USDT-SWAP` 1m bars arrive in the shared
 * Binance kline shape under `okx:…` names, with the venue's own base and quote volumes and `null` for
 * what OKX does not publish; an outage is recovered over `/market/candles`, every bar once and in
 * order; a hole stays absent; garbage is counted and skipped; the 64008 notice rotates the socket
 * without a loss; a resume replay reaching past the latest 1,440 bars takes `/market/history-candles`
 * and honours 50011 (HTTP 200 and 429 alike) with no request inside the back-off; `/ready` and
 * `/metrics` report the venue. The simulator and the daemon's wall clock run at 60x (a 1m bar closes
 * every second); the daemon's monotonic clock stays real.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/app.ts';
import type { SimulatorOptions } from '../../src/simulator/dialect.ts';
import { CANDLES_PATH, HISTORY_PATH } from '../../src/venues/okx/okx.ts';
import { okxTruth, startOkxSimulator, type OkxSimulator } from '../../src/venues/okx/simulator/index.ts';
import { value } from '../helpers/prometheus.ts';
import { RecordingClient, startVenueDaemon, until, type KlineMsg } from './harness.ts';

const SPEED = 60;
const MIN = 60_000;
const SPOT = 'okx:btc-usdt@kline_1m';
const SWAP = 'okx:btc-usdt-swap@kline_1m';
const SYMBOL_OF: Readonly<Record<string, string>> = { [SPOT]: 'BTC-USDT', [SWAP]: 'BTC-USDT-SWAP' };

interface Stack {
  readonly sim: OkxSimulator;
  readonly connector: Connector;
  readonly relay: string;
  readonly http: string;
  readonly now: () => number;
  readonly events: string[];
  readonly clients: RecordingClient[];
}

let stack: Stack | undefined;

afterEach(async () => {
  for (const c of stack?.clients ?? []) c.ws.terminate();
  await stack?.connector.shutdown('test');
  await stack?.sim.close();
  stack = undefined;
});

async function start(simOptions: SimulatorOptions = {}, env: Record<string, unknown> = {}): Promise<Stack> {
  const t0 = Date.now();
  const now = (): number => t0 + (Date.now() - t0) * SPEED;
  const sim = await startOkxSimulator({ openUpdateMs: 100, now, ...simOptions });
  const { connector, events } = await startVenueDaemon(
    {
      CONNECTOR_VENUES: 'okx',
      CONNECTOR_OKX_SYMBOLS: 'btc-usdt,BTC-USDT-SWAP',
      CONNECTOR_OKX_INTERVALS: '1m',
      CONNECTOR_OKX_WS_URL: sim.wsUrl,
      CONNECTOR_OKX_REST_URL: sim.restUrl,
      ...env,
    },
    now,
  );
  stack = { sim, connector, relay: `ws://127.0.0.1:${connector.relayAddress.port}`, http: `http://127.0.0.1:${connector.httpAddress?.port ?? 0}`, now, events, clients: [] };
  return stack;
}

async function client(s: Stack, query: string): Promise<RecordingClient> {
  const c = new RecordingClient(`${s.relay}/stream?${query}`);
  s.clients.push(c);
  await c.opened;
  return c;
}

/** One relay stream's closed bars: missing (inside the run, outside `holes`), duplicated, out of order, or not the venue's values. */
function audit(messages: readonly KlineMsg[], stream: string, holes: ReadonlySet<number> = new Set()) {
  const closed = messages.filter((m) => m.stream === stream && m.x);
  const symbol = SYMBOL_OF[stream] ?? '';
  let missing = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let wrong = 0;
  let inHole = 0;
  closed.forEach((m, i) => {
    const truth = okxTruth(symbol, '1m', m.t);
    const k = m.k;
    const same =
      k.s === truth.s && k.i === '1m' && k.T === truth.T && k.o === truth.o && k.h === truth.h && k.l === truth.l && k.c === truth.c && k.v === truth.v && k.q === truth.q;
    const nulls = k.n === null && k.V === null && k.Q === null && k.f === null && k.L === null && k.B === null;
    if (!same || !nulls) wrong++;
    if (holes.has(m.t)) inHole++;
    const prev = closed[i - 1]?.t;
    if (prev === undefined) return;
    if (m.t === prev) duplicated++;
    else if (m.t < prev) outOfOrder++;
    else for (let t = prev + MIN; t < m.t; t += MIN) if (!holes.has(t)) missing++;
  });
  return { count: closed.length, missing, duplicated, outOfOrder, wrong, inHole };
}

function clean(a: ReturnType<typeof audit>) {
  return { missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong, inHole: a.inHole };
}
const CLEAN = { missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0, inHole: 0 };

async function metrics(s: Stack): Promise<string> {
  return (await fetch(`${s.http}/metrics`)).text();
}

function withEvents<T>(s: Stack, p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw new Error(`${String(err)}\n${s.events.slice(-40).join('\n')}`);
  });
}

describe('OKX end to end', () => {
  it('delivers spot and perpetual bars in the shared kline shape under okx: names, each closed bar once and in order with the venue’s volumes, and reports the venue on /ready and /metrics', async () => {
    const s = await start();
    expect(s.connector.registry.all().map((r) => r.name)).toEqual([SPOT, SWAP]);
    const c = await client(s, `streams=${SPOT}/${SWAP}`);
    await withEvents(s, until(() => c.closedCandles(SPOT).length >= 4 && c.closedCandles(SWAP).length >= 4, 'four closed bars of each', 30_000));
    for (const stream of [SPOT, SWAP]) expect(clean(audit(c.messages, stream)), stream).toEqual(CLEAN);
    // Open updates too, same shape, x false.
    const open = c.messages.find((m) => m.stream === SWAP && !m.x);
    expect(open?.k).toMatchObject({ s: 'BTC-USDT-SWAP', i: '1m', x: false, n: null });
    // The perpetual's v is base (OKX volCcy), not contracts: it equals the truth's base volume.
    const lastSwap = c.messages.filter((m) => m.stream === SWAP && m.x).at(-1);
    expect(lastSwap?.k.v).toBe(okxTruth('BTC-USDT-SWAP', '1m', lastSwap?.t ?? 0).v);

    const ready = (await (await fetch(`${s.http}/ready`)).json()) as { exchanges: Array<{ venue: string; streams: { configured: number; live: number } }> };
    expect(ready.exchanges.map((e) => [e.venue, e.streams.configured, e.streams.live])).toEqual([['okx', 2, 2]]);
    const text = await metrics(s);
    expect(value(text, 'connector_streams_live{venue="okx"}')).toBe(2);
    expect(value(text, 'connector_upstream_candles_total{venue="okx"}')).toBeGreaterThan(8);
    expect(value(text, 'connector_parse_errors_total{venue="okx"}')).toBe(0);
    // Inside OKX's 3 connection attempts per second.
    expect(s.sim.counters.maxConnectionAttemptsPerWindowSeen).toBeLessThanOrEqual(3);
  }, 60_000);

  it('recovers an outage over /market/candles: every bar once and in order across the drop and refused reconnects', async () => {
    const s = await start();
    const c = await client(s, `streams=${SPOT}/${SWAP}`);
    await withEvents(s, until(() => c.closedCandles(SPOT).length >= 2 && c.closedCandles(SWAP).length >= 2, 'two closed bars of each', 30_000));
    const before = s.sim.counters.restRequests;
    s.sim.faults.refuseConnections(3, 503);
    s.sim.faults.dropAll();
    const seen = c.closedCandles(SPOT).length;
    await withEvents(s, until(() => c.closedCandles(SPOT).length >= seen + 6 && c.closedCandles(SWAP).length >= seen + 6, 'bars again after the outage', 40_000));
    expect(s.sim.counters.restRequests).toBeGreaterThan(before);
    // A few bars back: the recent endpoint only.
    expect(s.sim.klinesByPath[CANDLES_PATH]).toBeGreaterThan(0);
    expect(s.sim.klinesByPath[HISTORY_PATH]).toBeUndefined();
    expect(s.sim.counters.connectionsRefused).toBe(3);
    for (const stream of [SPOT, SWAP]) expect(clean(audit(c.messages, stream)), stream).toEqual(CLEAN);
    expect(value(await metrics(s), 'connector_rest_candles_recovered_total')).toBeGreaterThan(0);
    expect(s.sim.counters.restInsideRetryAfter).toBe(0);
  }, 90_000);

  it('leaves a hole absent (REST moved past it), counts it, and keeps the stream going; counts and skips garbage frames', async () => {
    const s = await start();
    const c = await client(s, `streams=${SPOT}`);
    await withEvents(s, until(() => c.closedCandles(SPOT).length >= 2, 'two closed bars', 30_000));
    // Two bars a few seconds ahead never exist, on WS or REST.
    const from = Math.floor(s.now() / MIN) * MIN + 5 * MIN;
    s.sim.faults.hole('BTC-USDT', '1m', from, from + 2 * MIN);
    const sockets = s.sim.sockets().length;
    s.sim.faults.garbage(5);
    await withEvents(s, until(() => c.closedCandles(SPOT).some((t) => t >= from + 4 * MIN), 'bars past the hole', 30_000));
    const holes = new Set([from, from + MIN]);
    expect(clean(audit(c.messages, SPOT, holes))).toEqual(CLEAN);
    expect(c.closedCandles(SPOT)).toContain(from - MIN);
    expect(c.closedCandles(SPOT)).toContain(from + 2 * MIN);
    const text = await metrics(s);
    expect(value(text, 'connector_rest_holes_total')).toBeGreaterThanOrEqual(2);
    // 5 garbage frames on each socket open at the time, every one counted, none a candle.
    expect(sockets).toBeGreaterThan(0);
    expect(value(text, 'connector_parse_errors_total{venue="okx"}')).toBe(5 * sockets);
  }, 60_000);

  it('rotates on the 64008 service-upgrade notice make-before-break: a new socket first, nothing lost, nothing twice', async () => {
    const s = await start();
    const c = await client(s, `streams=${SPOT}/${SWAP}`);
    await withEvents(s, until(() => c.closedCandles(SPOT).length >= 2 && c.closedCandles(SWAP).length >= 2, 'two closed bars of each', 30_000));
    const opened = s.sim.counters.connectionsOpened;
    s.sim.faults.serverShutdown();
    await withEvents(s, until(() => s.events.some((e) => e.includes('"connection.rotation"')), 'the rotation', 20_000));
    expect(s.events.some((e) => e.includes('"server.shutdown-notice"'))).toBe(true);
    expect(s.sim.counters.connectionsOpened).toBeGreaterThan(opened);
    // Make-before-break: the new socket was connected before the old one closed.
    const states = s.events.map((e) => JSON.parse(e) as { type: string; connId?: string; to?: string });
    const rotated = states.find((e) => e.type === 'connection.rotation')?.connId;
    const oldClosed = states.findIndex((e) => e.type === 'connection.state' && e.connId === rotated && e.to === 'closed');
    const newConnected = states.findIndex((e) => e.type === 'connection.state' && e.connId !== rotated && e.to === 'connected');
    expect(newConnected).toBeGreaterThanOrEqual(0);
    expect(newConnected).toBeLessThan(oldClosed);
    const seen = c.closedCandles(SPOT).length;
    await withEvents(s, until(() => c.closedCandles(SPOT).length >= seen + 3 && c.closedCandles(SWAP).length >= seen + 3, 'bars after the rotation', 30_000));
    for (const stream of [SPOT, SWAP]) expect(clean(audit(c.messages, stream)), stream).toEqual(CLEAN);
    expect(value(await metrics(s), 'connector_rotations_total{venue="okx"}')).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('replays 2,000 bars back from /history-candles (past /candles’ 1,440) and /candles, honouring every 50011 with no request inside its back-off', async () => {
    // A small REST budget: the replay's pages run into 50011 (the simulator answers 200 and 429 in turn).
    const s = await start({ restCapacity: 8 });
    const since = Math.floor(s.now() / MIN) * MIN - 2000 * MIN;
    const c = await client(s, `streams=${SPOT}&since=${since}`);
    await withEvents(s, until(() => c.closedCandles(SPOT).length >= 2010, '2,000 replayed bars and live ones', 80_000));
    const closed = c.closedCandles(SPOT);
    expect(closed[0]).toBe(since);
    expect(clean(audit(c.messages, SPOT))).toEqual(CLEAN);
    // The oldest 1,000-bar step starts beyond /candles' 1,440 bars; the next one within them.
    expect(s.sim.klinesByPath[HISTORY_PATH]).toBeGreaterThanOrEqual(10);
    expect(s.sim.klinesByPath[CANDLES_PATH]).toBeGreaterThan(0);
    expect(s.sim.counters.restLimited).toBeGreaterThan(0);
    expect(s.sim.counters.restStatuses[429] ?? 0).toBeGreaterThan(0);
    expect(s.sim.counters.restInsideRetryAfter).toBe(0);
    const text = await metrics(s);
    expect(value(text, 'connector_rest_rate_limited_total{venue="okx"}')).toBe(s.sim.counters.restLimited);
  }, 120_000);
});
