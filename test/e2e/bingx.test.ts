/**
 * BingX end to end (issue 17): the real daemon (startConnector) against the BingX spot and swap
 * simulators (src/venues/bingx/simulator, dialects of the shared engine) on port 0, with a real relay
 * client. BingX's smallest interval is 1m, so both simulators and the daemon's wall clock run at 60x
 * (a 1m candle closes every second); monotonic time (heartbeats, back-offs, Retry-After) stays real.
 *
 * What is held: gzip frames and server pings handled; candles in the shared kline event shape under
 * `bingx-spot:` / `bingx-swap:` names; every closed candle once, in order, equal to the simulator's
 * FINAL REST row and never to the last WebSocket update of it (the simulator's last push of a candle
 * always has fewer trades than its final row); no open update after its candle's closed one; a gap
 * (every socket dropped, reconnects refused) recovered over REST; a hole left absent; a malformed frame
 * counted and skipped; a 429's Retry-After honoured (no request inside it); per-venue metrics and /ready.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../src/app.ts';
import type { RelayKline, VenueSimulator } from '../../src/simulator/dialect.ts';
import { bingxSpotSimulator, bingxSwapSimulator } from '../../src/venues/bingx/simulator/index.ts';
import { value } from '../helpers/prometheus.ts';
import { RecordingClient, startVenueDaemon, until, type KlineMsg } from './harness.ts';

const SPEED = 60;
const MIN = 60_000;
const SPOT = ['bingx-spot:btc-usdt@kline_1m', 'bingx-spot:eth-usdt@kline_1m'] as const;
const SWAP = ['bingx-swap:btc-usdt@kline_1m', 'bingx-swap:eth-usdt@kline_1m'] as const;

interface Stack {
  spot: VenueSimulator;
  swap: VenueSimulator;
  connector: Connector;
  client: RecordingClient;
  events: string[];
}

let stack: Stack | undefined;

afterEach(async () => {
  stack?.client.ws.terminate();
  await stack?.connector.shutdown('test');
  await stack?.spot.close();
  await stack?.swap.close();
  stack = undefined;
});

async function start(env: Record<string, unknown> = {}): Promise<Stack> {
  const t0 = Date.now();
  const now = (): number => t0 + (Date.now() - t0) * SPEED;
  // Pushes every 100 ms (BingX: about every second, i.e. ~1.7 per 60x-minute; more updates per candle here).
  const simOptions = { openUpdateMs: 100, pingIntervalMs: 500, now };
  const spot = await bingxSpotSimulator.start(simOptions);
  const swap = await bingxSwapSimulator.start(simOptions);
  const { connector, events } = await startVenueDaemon(
    {
      CONNECTOR_VENUES: 'bingx-spot,bingx-swap',
      CONNECTOR_BINGX_SPOT_SYMBOLS: 'BTC-USDT,eth-usdt',
      CONNECTOR_BINGX_SPOT_WS_URL: spot.wsUrl,
      CONNECTOR_BINGX_SPOT_REST_URL: spot.restUrl,
      CONNECTOR_BINGX_SWAP_SYMBOLS: 'BTC-USDT,ETH-USDT',
      CONNECTOR_BINGX_SWAP_WS_URL: swap.wsUrl,
      CONNECTOR_BINGX_SWAP_REST_URL: swap.restUrl,
      ...env,
    },
    now,
  );
  const client = new RecordingClient(`ws://127.0.0.1:${connector.relayAddress.port}/stream?streams=${[...SPOT, ...SWAP].join('/')}`);
  await client.opened;
  return (stack = { spot, swap, connector, client, events });
}

const symbolOf = (stream: string): string => (stream.split(':')[1]?.split('@')[0] ?? '').toUpperCase();
const truthOf = (stream: string, t: number): RelayKline => (stream.startsWith('bingx-spot:') ? bingxSpotSimulator : bingxSwapSimulator).truth(symbolOf(stream), '1m', t);

/** One stream's closed candles: none missing (holes aside), none twice, in order, each equal to the simulator's final row. */
function audit(client: RecordingClient, stream: string, holes: readonly number[] = []) {
  const closed = client.messages.filter((m) => m.stream === stream && m.x);
  let missing = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  const wrong: string[] = [];
  closed.forEach((m, i) => {
    const truth = truthOf(stream, m.t);
    const k = m.k;
    const got = { s: k.s, i: k.i, T: k.T, o: k.o, h: k.h, l: k.l, c: k.c, v: k.v, q: k.q, n: k.n, V: k.V, Q: k.Q };
    if (JSON.stringify(got) !== JSON.stringify(truth)) wrong.push(`${m.t}: ${JSON.stringify(got)} != ${JSON.stringify(truth)}`);
    const prev = closed[i - 1]?.t;
    if (prev === undefined) return;
    if (m.t === prev) duplicated++;
    else if (m.t < prev) outOfOrder++;
    else for (let t = prev + MIN; t < m.t; t += MIN) if (!holes.includes(t)) missing++;
  });
  return { count: closed.length, missing, duplicated, outOfOrder, wrong };
}

/** The last open update the client saw of each closed candle, and the updates that came after their candle's close. */
function openVersusClosed(messages: readonly KlineMsg[], stream: string) {
  const lastOpen = new Map<number, KlineMsg>();
  const closedAt = new Set<number>();
  let afterClose = 0;
  for (const m of messages) {
    if (m.stream !== stream) continue;
    if (m.x) closedAt.add(m.t);
    else if (closedAt.has(m.t)) afterClose++;
    else lastOpen.set(m.t, m);
  }
  let compared = 0;
  let equalToLastUpdate = 0;
  for (const m of messages) {
    if (m.stream !== stream || !m.x) continue;
    const last = lastOpen.get(m.t);
    if (last === undefined) continue;
    compared++;
    if (last.k.v === m.k.v && last.k.h === m.k.h && last.k.l === m.k.l && last.k.c === m.k.c) equalToLastUpdate++;
  }
  return { compared, equalToLastUpdate, afterClose };
}

async function metricsOf(c: Connector): Promise<string> {
  return (await fetch(`http://127.0.0.1:${c.httpAddress?.port ?? 0}/metrics`)).text();
}

describe('BingX end to end', () => {
  it('relays BingX spot and swap candles in the shared event shape, each closed candle once, in order, as the final REST row and never the last WebSocket update', async () => {
    const { spot, swap, connector, client, events } = await start();
    expect(connector.registry.all().map((s) => s.name)).toEqual([...SPOT, ...SWAP]);
    await until(() => [...SPOT, ...SWAP].every((s) => client.closedCandles(s).length >= 6), 'six closed candles of every stream', 40_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${events.slice(-30).join('\n')}`);
    });

    for (const stream of [...SPOT, ...SWAP]) {
      const a = audit(client, stream);
      expect({ stream, missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ stream, missing: 0, duplicated: 0, outOfOrder: 0, wrong: [] });
      const ov = openVersusClosed(client.messages, stream);
      // Most closed candles were seen forming first; none of them closed as its last update said.
      expect(ov.compared, stream).toBeGreaterThanOrEqual(4);
      expect({ stream, equalToLastUpdate: ov.equalToLastUpdate, afterClose: ov.afterClose }).toEqual({ stream, equalToLastUpdate: 0, afterClose: 0 });
    }

    // The shared Binance kline event shape: native symbol, canonical interval, null for what BingX does not publish.
    const spotClosed = client.messages.find((m) => m.stream === SPOT[0] && m.x)?.k;
    expect(spotClosed).toMatchObject({ s: 'BTC-USDT', i: '1m', x: true, f: null, L: null, n: null, V: null, Q: null, B: null });
    expect(typeof spotClosed?.q).toBe('string');
    const spotOpen = client.messages.find((m) => m.stream === SPOT[0] && !m.x)?.k;
    expect(spotOpen).toMatchObject({ s: 'BTC-USDT', i: '1m', x: false });
    expect(typeof spotOpen?.n).toBe('number'); // the spot push carries a trade count, REST rows do not
    expect(client.messages.find((m) => m.stream === SWAP[1] && m.x)?.k).toMatchObject({ s: 'ETH-USDT', i: '1m', x: true, q: null, n: null });

    // Gzip frames and server pings: answered, nothing dropped for a missed pong, nothing unparsable.
    for (const sim of [spot, swap]) {
      expect(sim.counters.pongsReceived).toBeGreaterThan(0);
      expect(sim.counters.closedByHeartbeat).toBe(0);
      expect(sim.counters.closedKlinesSent).toBe(0); // no closed flag on the wire
    }
    expect(connector.venues.map((v) => v.pool.stats().parseErrors)).toEqual([0, 0]);
    // Closing candles is not counted as gaps.
    expect(connector.pipeline.gapStats.finalized).toBeGreaterThanOrEqual(20);
    expect(connector.pipeline.gapStats.backfills).toBe(0);
  }, 90_000);

  it('recovers a gap over REST (every candle once, in order), leaves a hole absent, skips a malformed frame, and honours a 429’s Retry-After', async () => {
    const { spot, swap, connector, client, events } = await start();
    await until(() => [...SPOT, ...SWAP].every((s) => client.closedCandles(s).length >= 3), 'three closed candles of every stream', 40_000);

    // Garbage on every socket: counted as parse errors, skipped, the sockets kept.
    // Seven malformed frames a socket: one names the other market's topic (an unknown stream, not an error).
    spot.faults.garbage(7);
    swap.faults.garbage(7);
    await until(() => connector.venues.every((v) => v.pool.stats().parseErrors >= 6), 'the garbage counted');

    // The swap upstream goes away for a while (several candles at 60x), and one candle in the outage
    // never existed; REST answers the first recovery asks with 429 and a 2 s Retry-After.
    const last = Math.max(...SWAP.map((s) => client.closedCandles(s).at(-1) ?? 0));
    const hole = last + 3 * MIN;
    swap.faults.hole('BTC-USDT', '1m', hole, hole + MIN);
    const before = { rest: swap.counters.restRequests, limited: swap.counters.restStatuses[429] ?? 0 };
    swap.faults.restErrors(2, 429, 2);
    swap.faults.dropAll();
    swap.faults.refuseConnections(3);
    const seen = SWAP.map((s) => client.closedCandles(s).length);
    await until(() => SWAP.every((s, i) => client.closedCandles(s).length >= (seen[i] ?? 0) + 8), 'swap candles again after the outage', 60_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${events.slice(-40).join('\n')}`);
    });
    expect(swap.counters.restRequests).toBeGreaterThan(before.rest);
    expect((swap.counters.restStatuses[429] ?? 0) - before.limited).toBe(2);
    expect(swap.counters.restInsideRetryAfter).toBe(0);
    expect(spot.counters.restInsideRetryAfter).toBe(0);

    for (const stream of [...SPOT, ...SWAP]) {
      const a = audit(client, stream, stream === SWAP[0] ? [hole] : []);
      expect({ stream, missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ stream, missing: 0, duplicated: 0, outOfOrder: 0, wrong: [] });
      expect(openVersusClosed(client.messages, stream).afterClose, stream).toBe(0);
    }
    expect(client.closedCandles(SWAP[0])).not.toContain(hole);
    expect(client.closedCandles(SWAP[1])).toContain(hole); // the hole is BTC-USDT's alone
    expect(connector.pipeline.gapStats.holes).toBe(1);
    expect(connector.pipeline.gapStats.backfills).toBeGreaterThanOrEqual(1); // the outage was a gap, not a close
    // The REST budget: never near BingX's 500 per 10 s.
    expect(swap.counters.restBudgetUsedMax).toBeLessThanOrEqual(400);

    // Per-venue metrics and /ready figures.
    const m = await metricsOf(connector);
    expect(value(m, 'connector_parse_errors_total{venue="bingx-spot"}')).toBeGreaterThanOrEqual(6);
    expect(value(m, 'connector_parse_errors_total{venue="bingx-swap"}')).toBeGreaterThanOrEqual(6);
    expect(value(m, 'connector_active_connections{venue="bingx-swap"}')).toBeGreaterThanOrEqual(1);
    const ready = (await (await fetch(`http://127.0.0.1:${connector.httpAddress?.port ?? 0}/ready`)).json()) as {
      exchanges: Array<{ venue: string; streams: { configured: number; live: number } }>;
    };
    expect(ready.exchanges.map((e) => [e.venue, e.streams.configured, e.streams.live])).toEqual([
      ['bingx-spot', 2, 2],
      ['bingx-swap', 2, 2],
    ]);
  }, 120_000);
});
