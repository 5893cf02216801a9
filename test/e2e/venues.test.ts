/**
 * Two venues in one daemon (issue 13): Binance spot and Binance USD-M futures side by side against
 * their simulators, one relay client receiving both venues' candles on one connection, every closed
 * candle of both exactly once and in order, across a fault on one venue recovered over that venue's
 * own REST (`/fapi/v1/klines`). USD-M has no 1s klines, so both simulators and the daemon's wall clock
 * run at 60x (a 1m candle closes every second); the daemon's monotonic clock stays real.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startConnector, type Connector } from '../../src/app.ts';
import { EnvSchema } from '../../src/config/schema.ts';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { klineAt } from '../../src/venues/binance/simulator/klines.ts';
import type { SimulatorProfileId } from '../../src/venues/binance/simulator/profiles.ts';
import { RecordingClient, until } from './harness.ts';

const SPEED = 60;
const MIN = 60_000;

let stack: { spot: BinanceSimulator; usdm: BinanceSimulator; connector: Connector; client?: RecordingClient } | undefined;

afterEach(async () => {
  stack?.client?.ws.terminate();
  await stack?.connector.shutdown('test');
  await stack?.spot.close();
  await stack?.usdm.close();
  stack = undefined;
});

/** Closed candles of one relay stream: none missing, none twice, in order, each equal to its simulator's truth. */
function audit(client: RecordingClient, stream: string, symbol: string, profile: SimulatorProfileId) {
  const closed = client.messages.filter((m) => m.stream === stream && m.x);
  let missing = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let wrong = 0;
  closed.forEach((m, i) => {
    const truth = klineAt(symbol, '1m', m.t, profile);
    const k = m.k;
    if (k.o !== truth.o || k.h !== truth.h || k.l !== truth.l || k.c !== truth.c || k.v !== truth.v || k.q !== truth.q || k.T !== truth.T) wrong++;
    const prev = closed[i - 1]?.t;
    if (prev === undefined) return;
    if (m.t === prev) duplicated++;
    else if (m.t < prev) outOfOrder++;
    else missing += (m.t - prev) / MIN - 1;
  });
  return { count: closed.length, missing, duplicated, outOfOrder, wrong };
}

describe('two venues in one daemon', () => {
  it('delivers Binance spot and USD-M candles to one relay client, each closed candle once and in order, across a USD-M outage recovered over its REST', async () => {
    const start = Date.now();
    const now = (): number => start + (Date.now() - start) * SPEED;
    const spot = await BinanceSimulator.start({ host: '127.0.0.1', port: 0, openUpdateMs: 100, now });
    const usdm = await BinanceSimulator.start({ host: '127.0.0.1', port: 0, openUpdateMs: 100, now, profile: 'binance-usdm' });
    const config = EnvSchema.parse({
      CONNECTOR_VENUES: 'binance,binance-usdm',
      CONNECTOR_SYMBOLS: 'btcusdt,ethusdt',
      CONNECTOR_INTERVALS: '1m',
      CONNECTOR_BINANCE_WS_URL: spot.wsUrl,
      CONNECTOR_BINANCE_REST_URL: spot.restUrl,
      CONNECTOR_BINANCE_USDM_SYMBOLS: 'BTCUSDT,ethusdt',
      CONNECTOR_BINANCE_USDM_WS_URL: usdm.wsUrl,
      CONNECTOR_BINANCE_USDM_REST_URL: usdm.restUrl,
      CONNECTOR_RELAY_HOST: '127.0.0.1',
      CONNECTOR_RELAY_PORT: 0,
      CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
      CONNECTOR_WSS_HEALTH_CHECK_PORT: 0,
      // Three refused attempts after the drop take ~2 s (~2 candles at 60x): REST has to fill them.
      CONNECTOR_RECONNECT_BASE_MS: 300,
      CONNECTOR_RECONNECT_MAX_MS: 1000,
      CONNECTOR_LOG_LEVEL: 'silent',
    });
    const connector = await startConnector(config, {
      log: pino({ level: 'silent' }),
      clock: { now, monotonic: () => performance.now() },
      collectDefaultMetrics: false,
      gapRetryDelaysMs: [50, 100, 200, 500],
    });
    stack = { spot, usdm, connector };
    const events: string[] = [];
    connector.status.subscribe((e) => {
      if (e.type !== 'relay.client.open' && e.type !== 'relay.client.close') events.push(JSON.stringify(e));
    });
    expect(connector.registry.all().map((s) => s.name)).toEqual([
      'btcusdt@kline_1m',
      'ethusdt@kline_1m',
      'binance-usdm:btcusdt@kline_1m',
      'binance-usdm:ethusdt@kline_1m',
    ]);

    // One connection: a spot stream in the URL, then USD-M ones by SUBSCRIBE.
    const relay = `ws://127.0.0.1:${connector.relayAddress.port}`;
    const client = (stack.client = new RecordingClient(`${relay}/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m`));
    await client.opened;
    client.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['binance-usdm:btcusdt@kline_1m', 'binance-usdm:ethusdt@kline_1m'], id: 1 }));
    client.ws.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 2 }));
    await until(() => client.other.length >= 2, 'SUBSCRIBE and LIST_SUBSCRIPTIONS answered');
    expect(client.other).toContainEqual({ result: null, id: 1 });
    expect(client.other).toContainEqual({
      result: expect.arrayContaining(['btcusdt@kline_1m', 'ethusdt@kline_1m', 'binance-usdm:btcusdt@kline_1m', 'binance-usdm:ethusdt@kline_1m']) as unknown,
      id: 2,
    });

    const usdmBtc = 'binance-usdm:btcusdt@kline_1m';
    await until(() => client.closedCandles(usdmBtc).length >= 3 && client.closedCandles('btcusdt@kline_1m').length >= 3, 'three closed candles of each venue', 30_000);

    // The USD-M upstream goes away for a while (several 1m candles at 60x); spot carries on.
    const restBefore = usdm.counters.restRequests;
    usdm.faults.dropAll();
    usdm.faults.refuseConnections(3);
    const seen = client.closedCandles(usdmBtc).length;
    await until(() => client.closedCandles(usdmBtc).length >= seen + 6, 'USD-M candles again after the outage', 30_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${events.slice(-40).join('\n')}`);
    });
    expect(usdm.counters.restRequests).toBeGreaterThan(restBefore);

    for (const [stream, symbol, profile] of [
      ['btcusdt@kline_1m', 'btcusdt', 'binance'],
      ['ethusdt@kline_1m', 'ethusdt', 'binance'],
      [usdmBtc, 'btcusdt', 'binance-usdm'],
      ['binance-usdm:ethusdt@kline_1m', 'ethusdt', 'binance-usdm'],
    ] as const) {
      const a = audit(client, stream, symbol, profile);
      expect(a.count, stream).toBeGreaterThanOrEqual(3);
      expect({ stream, missing: a.missing, duplicated: a.duplicated, outOfOrder: a.outOfOrder, wrong: a.wrong }).toEqual({ stream, missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
    }
    // USD-M events in the shared shape: the native symbol, the canonical interval.
    const k = client.messages.find((m) => m.stream === usdmBtc)?.k;
    expect(k).toMatchObject({ s: 'BTCUSDT', i: '1m' });

    // /ready lists both venues, each with its own figures.
    const ready = (await (await fetch(`http://127.0.0.1:${connector.httpAddress?.port ?? 0}/ready`)).json()) as {
      exchanges: Array<{ venue: string; streams: { configured: number } }>;
    };
    expect(ready.exchanges.map((e) => [e.venue, e.streams.configured])).toEqual([
      ['binance', 2],
      ['binance-usdm', 2],
    ]);
  }, 90_000);
});
