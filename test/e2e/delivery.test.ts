import { afterEach, describe, expect, it } from 'vitest';
import { audit, explain, RecordingClient, sleep, startStack, until } from './harness.ts';

const SYMBOLS = ['btcusdt', 'ethusdt', 'bnbusdt', 'solusdt', 'xrpusdt'];
const STREAMS = SYMBOLS.map((s) => `${s}@kline_1s`);
let stop: (() => Promise<void>) | undefined;

afterEach(async () => {
  await stop?.();
  stop = undefined;
});

describe('end to end: simulator → daemon → relay clients', () => {
  it('delivers every closed candle to each of several relay clients exactly once and in order while upstream sockets drop and rotate', async () => {
    const stack = await startStack(
      {},
      { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: '1s', CONNECTOR_MAX_STREAMS_PER_CONNECTION: 2, CONNECTOR_RECONNECT_BASE_MS: 300, CONNECTOR_RECONNECT_MAX_MS: 1200, CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: 20 },
    );
    stop = stack.stop;
    const clients = [0, 1, 2].map(() => new RecordingClient(`${stack.relayUrl}/stream?streams=${STREAMS.join('/')}`));
    await Promise.all(clients.map((c) => c.opened));
    await until(() => clients.every((c) => STREAMS.every((s) => c.closedCandles(s).length >= 1)), 'first closed candle on every stream');

    stack.sim.faults.refuseConnections(6); // the reconnects fail for a while: closed candles are missed
    stack.sim.faults.dropAll(); // abrupt loss of every upstream socket
    await sleep(3500);
    stack.sim.faults.stallStreams(STREAMS.slice(0, 2), 2500); // two streams go silent; their closed candles are lost upstream
    await sleep(3500);
    stack.sim.faults.serverShutdown(); // Binance asks us to move: make-before-break, overlapping sockets
    await sleep(2200);
    stack.sim.faults.closeAll(1001, 'maintenance');
    await sleep(2500);

    const stats = stack.connector.pipeline.stats();
    expect(stack.sim.counters.connectionsOpened).toBeGreaterThanOrEqual(9); // 3 initial + 3 after the drop + 3 rotated (+ after closeAll)
    for (const c of clients) {
      for (const s of STREAMS) {
        const a = audit(c, s, 1000);
        expect(a, explain(c, s, stack.events)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
        expect(a.count).toBeGreaterThanOrEqual(6);
      }
    }
    // Candles really were lost upstream, and came back over REST.
    expect(stack.connector.pipeline.gapStats.candlesRecovered).toBeGreaterThanOrEqual(STREAMS.length);
    // The overlap during rotation delivered the same candles twice upstream: filtered, and counted.
    expect(stats.duplicates + stats.openSkipped).toBeGreaterThan(0);
  });
});

describe('end to end: backpressure', () => {
  it('pauses upstream reading when the closed queue fills (a REST recovery burst), resumes it, and loses nothing', async () => {
    // A closed queue of 4 against 10 streams of 1s candles: the recovery after an outage hands over
    // dozens of candles at once, more than the queue holds, so it must block and pause the sockets.
    const symbols = [...SYMBOLS, 'adausdt', 'dogeusdt', 'dotusdt', 'ltcusdt', 'trxusdt'];
    const streams = symbols.map((s) => `${s}@kline_1s`);
    const stack = await startStack(
      {},
      { CONNECTOR_SYMBOLS: symbols.join(','), CONNECTOR_INTERVALS: '1s', CONNECTOR_CLOSED_QUEUE_MAXSIZE: 4, CONNECTOR_RECONNECT_BASE_MS: 300, CONNECTOR_RECONNECT_MAX_MS: 1200 },
    );
    stop = stack.stop;
    const client = new RecordingClient(`${stack.relayUrl}/stream?streams=${streams.join('/')}`);
    await client.opened;
    await until(() => streams.every((s) => client.closedCandles(s).length >= 1), 'first closed candle on every stream');

    const blockedBefore = stack.connector.pipeline.stats().blockingEvents;
    stack.sim.faults.refuseConnections(4);
    stack.sim.faults.dropAll(); // every stream misses a few seconds: recovered over REST in one burst
    await until(() => stack.connector.pipeline.gapStats.candlesRecovered >= streams.length, 'the missed candles recovered over REST', 30_000);
    await until(() => stack.connector.pipeline.stats().blockingEvents > blockedBefore, 'the closed queue blocking on the recovery burst', 10_000);
    await until(() => !stack.connector.pipeline.stats().blocked && stack.connector.pipeline.gapStats.pending === 0, 'reading resumed, recovery done', 20_000);
    const counts = streams.map((s) => client.closedCandles(s).length);
    await until(() => streams.every((s, i) => client.closedCandles(s).length >= (counts[i] ?? 0) + 2), 'live candles flowing again', 10_000);

    expect(stack.events.some((e) => e.type === 'queue.blocked')).toBe(true);
    expect(stack.events.some((e) => e.type === 'queue.resumed')).toBe(true);
    for (const s of streams) {
      const a = audit(client, s, 1000);
      expect(a, explain(client, s, stack.events)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
    }
    expect(stack.connector.pipeline.gapStats.candlesRecovered).toBeGreaterThanOrEqual(streams.length);
  });
});
