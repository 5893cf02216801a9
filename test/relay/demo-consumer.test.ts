/** The demo consumer (src/demo/consumer.ts) resumes with since: a relay restart leaves no gap in what it prints. */
import { afterEach, describe, expect, it } from 'vitest';
import type { Candle } from '../../src/core/candle.ts';
import { openTimeAt } from '../../src/core/intervals.ts';
import { runConsumer } from '../../src/demo/consumer.ts';
import type { ReplayFetch } from '../../src/relay/server.ts';
import { BTC, ManualClock, cleanup, restCandle, startRelay, waitFor, wsCandle } from './helpers.ts';

afterEach(cleanup);

const MIN = 60_000;

describe('demo consumer', () => {
  it('prints every closed candle once, in order, across a relay restart (the new relay has no history: REST)', async () => {
    const clock = new ManualClock();
    const current = openTimeAt('1m', clock.now());
    const first = current - 10 * MIN;
    const a = await startRelay({}, { clock });
    const lines: string[] = [];
    const stop = runConsumer({ url: a.url, streams: [BTC.name], print: (l) => lines.push(l) });
    try {
      await waitFor(() => a.relay.stats().clients === 1, 3000, 'the consumer');
      for (let i = 0; i < 4; i++) a.relay.deliver([wsCandle(BTC, { openTime: first + i * MIN })]);
      await waitFor(() => lines.filter((l) => l.startsWith('closed')).length === 4, 3000, 'four candles');
      await a.relay.close();
      const replay: ReplayFetch = (stream, from, to) => {
        const out: Candle[] = [];
        for (let t = from; t < to; t += MIN) out.push(restCandle(stream, t));
        return Promise.resolve(out);
      };
      const b = await startRelay({ port: Number(new URL(a.url).port) }, { clock, replay });
      await waitFor(() => lines.filter((l) => l.startsWith('closed')).length === 10, 5000, 'the candles closed meanwhile');
      b.relay.deliver([wsCandle(BTC, { openTime: current })]);
      await waitFor(() => lines.filter((l) => l.startsWith('closed')).length === 11, 3000, 'live again');
    } finally {
      stop();
    }
    const printed = lines.filter((l) => l.startsWith('closed')).map((l) => Date.parse(/\d{4}-\d\d-\d\dT[\d:.]+Z/.exec(l)?.[0] ?? ''));
    expect(printed).toEqual(Array.from({ length: 11 }, (_, i) => first + i * MIN));
    expect(lines.some((l) => l.includes('resuming'))).toBe(true);
  });
});
