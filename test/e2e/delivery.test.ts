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
