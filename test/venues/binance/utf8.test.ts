import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { klineStreamName } from '../../../src/venues/binance/protocol.ts';
import { klineAt, klineEventJson, openKlineAt } from '../../../src/venues/binance/simulator/klines.ts';
import { eventsOf, startHarness, testConfig, waitFor, type Harness } from '../../upstream/helpers.ts';

const T0 = Date.UTC(2026, 10, 3, 12, 0);

function combined(symbol: string, interval: string, json: string): string {
  return `{"stream":"${klineStreamName(symbol, interval)}","data":${json}}`;
}

let h: Harness | undefined;
let server: WebSocketServer | undefined;

afterEach(async () => {
  await h?.pool.close();
  h = undefined;
  await new Promise<void>((resolve) => {
    if (server === undefined) resolve();
    else {
      for (const c of server.clients) c.terminate();
      server.close(() => {
        resolve();
      });
    }
  });
  server = undefined;
});

/** An upstream that sends `frames` (text frames, bytes as given: ws does not validate what it sends) on connect. */
async function upstream(frames: readonly Buffer[]): Promise<string> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server = wss;
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws: WebSocket) => {
    for (const f of frames) ws.send(f, { binary: false });
  });
  const addr = wss.address();
  if (addr === null || typeof addr === 'string') throw new Error('unexpected address');
  return `ws://127.0.0.1:${addr.port}`;
}

describe('upstream frames that are not valid UTF-8', () => {
  it('are counted as parse errors and never delivered, while valid frames around them are', async () => {
    const good1 = openKlineAt('btcusdt', '1s', T0, 0.3);
    const good2 = klineAt('ethusdt', '1s', T0);
    const valid1 = Buffer.from(combined('btcusdt', '1s', klineEventJson(good1, T0 + 300)));
    const valid2 = Buffer.from(combined('ethusdt', '1s', klineEventJson(good2, T0 + 1000)));
    // The same frame with a lone continuation byte in B, an overlong encoding in the stream name, and a
    // truncated 3-byte sequence in a decimal: each one otherwise a well-formed kline frame.
    const template = combined('btcusdt', '1s', klineEventJson({ ...good1, B: 'IGNORE' }, T0 + 400));
    const invalid = [
      Buffer.from(template.replace('IGNORE', 'IGN\u0000RE'), 'latin1').map((b) => (b === 0 ? 0x80 : b)),
      Buffer.concat([Buffer.from('{"stream":"btcusdt'), Buffer.from([0xc0, 0xc0]), Buffer.from(template.slice('{"stream":"btcusdt'.length))]),
      Buffer.from(template.replace(`"o":"${good1.o}"`, `"o":"1\u0000"`), 'latin1').map((b) => (b === 0 ? 0xe2 : b)),
    ].map((b) => Buffer.from(b));
    const url = await upstream([valid1, ...invalid, valid2]);
    h = startHarness(testConfig(url));
    const x = h;
    await x.pool.start();
    await waitFor('both valid candles', () => x.candles.length >= 2);
    await waitFor('the invalid frames counted', () => x.pool.stats().parseErrors >= invalid.length);
    expect(x.pool.stats().parseErrors).toBe(invalid.length);
    expect(x.candles.map((c) => [c.stream.name, c.eventTime, c.closed])).toEqual([
      ['btcusdt@kline_1s', T0 + 300, false],
      ['ethusdt@kline_1s', T0 + 1000, true],
    ]);
    expect(x.candles[0]!.raw!.toString('utf8')).toBe(klineEventJson(good1, T0 + 300));
    const errors = eventsOf(x.events, 'parse.error');
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0]!.reason).toContain('invalid UTF-8');
  });
});
