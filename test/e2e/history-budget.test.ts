import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { startStack } from './harness.ts';

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

/** A pino logger whose JSON lines land in `lines`. */
function capture(lines: string[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
      done();
    },
  });
  return pino({ level: 'warn' }, sink);
}

const symbols = (n: number) => Array.from({ length: n }, (_, i) => `sym${i}usdt`).join(',');

describe('relay history memory at start', () => {
  it('warns, naming CONNECTOR_RELAY_HISTORY_CANDLES, when a full history would take more than half the memory budget', async () => {
    const lines: string[] = [];
    // 20 streams x 1440 candles x ~480 B = ~13 MiB of history against a 16 MiB budget.
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: symbols(20), CONNECTOR_INTERVALS: '1m', CONNECTOR_MAX_MEMORY_MB: 16 }, { log: capture(lines) });
    stop = stack.stop;
    const warning = lines.map((l) => JSON.parse(l) as { event?: string; msg?: string }).find((l) => l.event === 'config.warning' && l.msg?.includes('CONNECTOR_RELAY_HISTORY_CANDLES'));
    expect(warning?.msg).toMatch(/CONNECTOR_RELAY_HISTORY_CANDLES=1440 x 20 streams needs about 13 MiB/);
  });

  it('says nothing when the history fits', async () => {
    const lines: string[] = [];
    const stack = await startStack({}, { CONNECTOR_SYMBOLS: symbols(20), CONNECTOR_INTERVALS: '1m', CONNECTOR_MAX_MEMORY_MB: 16, CONNECTOR_RELAY_HISTORY_CANDLES: 100 }, { log: capture(lines) });
    stop = stack.stop;
    expect(lines.filter((l) => l.includes('CONNECTOR_RELAY_HISTORY_CANDLES'))).toEqual([]);
  });
});
