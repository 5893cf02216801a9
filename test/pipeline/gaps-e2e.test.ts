/**
 * Gap recovery end to end (simulator → daemon → relay client) when Binance REST lags the stream, and
 * when Binance really has a hole (contract §3).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusEventOf } from '../../src/core/status.ts';
import { openTimeAt } from '../../src/core/intervals.ts';
import { audit, explain, RecordingClient, sleep, startStack, until } from '../e2e/harness.ts';

const SYMBOLS = ['btcusdt', 'ethusdt', 'bnbusdt', 'solusdt'];
const STREAMS = SYMBOLS.map((s) => `${s}@kline_1s`);
let stop: (() => Promise<void>) | undefined;

afterEach(async () => {
  await stop?.();
  stop = undefined;
});

function backfills(events: readonly { type: string }[], stream: string): StatusEventOf<'backfill'>[] {
  return events.filter((e): e is StatusEventOf<'backfill'> => e.type === 'backfill' && (e as StatusEventOf<'backfill'>).stream === stream);
}

describe('gap recovery end to end', () => {
  it('REST lagging 20 s behind after a 5 s upstream outage: every candle of the gap is delivered, in order, none counted as a hole', { timeout: 90_000 }, async () => {
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: SYMBOLS.join(','), CONNECTOR_INTERVALS: '1s' });
    stop = stack.stop;
    const client = new RecordingClient(`${stack.relayUrl}/stream?streams=${STREAMS.join('/')}`);
    await client.opened;
    await until(() => STREAMS.every((s) => client.closedCandles(s).length >= 2), 'closed candles on every stream');

    stack.sim.faults.restLag(20_000);
    const outageFrom = openTimeAt('1s', Date.now());
    stack.sim.faults.stallStreams(STREAMS, 5000); // the candles closing in these 5 s are lost upstream
    await sleep(5000);
    const outageTo = openTimeAt('1s', Date.now());
    // Live candles resume at once, but wait behind the gap until REST has it (~20 s later).
    await until(() => STREAMS.every((s) => client.closedCandles(s).some((t) => t >= outageTo + 2000)), 'candles after the gap on every stream', 60_000);

    for (const s of STREAMS) {
      const a = audit(client, s, 1000);
      expect(a, explain(client, s, stack.events)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
      const times = client.closedCandles(s);
      for (let t = outageFrom; t < outageTo; t += 1000) expect(times, `${s} ${t}`).toContain(t);
      // One gap, counted once (however many times REST was asked), with nothing declared a hole.
      expect(backfills(stack.events, s).map((e) => [e.outcome, e.holes, e.recovered === e.missing])).toEqual([['ok', 0, true]]);
    }
    const gaps = stack.connector.pipeline.gapStats;
    expect(gaps.holes).toBe(0);
    expect(gaps.backfills).toBe(STREAMS.length);
    expect(gaps.candlesRecovered).toBeGreaterThanOrEqual(4 * STREAMS.length);
    expect(stack.connector.rest.stats().requests).toBeGreaterThan(STREAMS.length); // REST was asked again while it lagged
  });

  it('still skips and counts a real hole (Binance never had it) once REST has moved past it', { timeout: 60_000 }, async () => {
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: 'btcusdt,ethusdt', CONNECTOR_INTERVALS: '1s' });
    stop = stack.stop;
    const client = new RecordingClient(`${stack.relayUrl}/stream?streams=btcusdt@kline_1s/ethusdt@kline_1s`);
    await client.opened;
    await until(() => ['btcusdt@kline_1s', 'ethusdt@kline_1s'].every((s) => client.closedCandles(s).length >= 1), 'first closed candles');
    stack.sim.faults.restLag(3000); // REST moves past the hole only a few seconds after the stream does
    const from = openTimeAt('1s', Date.now()) + 2000;
    stack.sim.faults.hole('btcusdt', '1s', from, from + 3000); // neither the stream nor REST has these
    await until(() => client.closedCandles('btcusdt@kline_1s').some((t) => t >= from + 5000), 'candles after the hole', 20_000);

    const times = client.closedCandles('btcusdt@kline_1s');
    expect(times.filter((t) => t >= from && t < from + 3000)).toEqual([]);
    const a = audit(client, 'btcusdt@kline_1s', 1000);
    expect(a, explain(client, 'btcusdt@kline_1s', stack.events)).toMatchObject({ missing: 3, duplicated: 0, outOfOrder: 0, wrong: 0 });
    expect(backfills(stack.events, 'btcusdt@kline_1s')).toEqual([expect.objectContaining({ fromOpenTime: from, toOpenTime: from + 3000, missing: 3, recovered: 0, holes: 3, outcome: 'partial' })]);
    expect(stack.connector.pipeline.gapStats.holes).toBe(3);
    expect(audit(client, 'ethusdt@kline_1s', 1000)).toMatchObject({ missing: 0, duplicated: 0, outOfOrder: 0, wrong: 0 });
  });
});
