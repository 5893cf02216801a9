/**
 * BingX REST through the venue-agnostic RestClient against a real HTTP server on port 0: a refusal
 * dressed as a 200 (`{"code":100410,…}`, frequency limit) closes the IP's gate like a 429, so nothing
 * leaves before its Retry-After has passed, and the range is then served.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { EnvSchema } from '../../../src/config/schema.ts';
import { StatusStream, type StatusEvent } from '../../../src/core/status.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { RestClient } from '../../../src/upstream/rest.ts';
import { registerVenueStreams } from '../../../src/upstream/venue.ts';
import { bingxSwap } from '../../../src/venues/bingx/swap.ts';

const MIN = 60_000;
let server: Server | undefined;
let client: RestClient | undefined;

afterEach(async () => {
  await client?.close();
  await new Promise<void>((resolve) => {
    if (server === undefined) resolve();
    else server.close(() => {
      resolve();
    });
  });
  server = undefined;
  client = undefined;
});

describe('BingX REST', () => {
  it('takes a 200 with code 100410 for a 429: the gate stays closed for its Retry-After, then the range is served', async () => {
    const end = Math.floor(Date.now() / MIN) * MIN - 5 * MIN;
    const arrivals: number[] = [];
    server = createServer((req, res) => {
      arrivals.push(performance.now());
      res.setHeader('content-type', 'application/json');
      if (arrivals.length === 1) {
        res.setHeader('retry-after', '1');
        res.end('{"code":100410,"msg":"The request frequency is too high"}');
        return;
      }
      const rows = [0, 1, 2].map((i) => ({ open: '1', close: '2', high: '3', low: '0.5', volume: '10', time: end + i * MIN }));
      res.end(JSON.stringify({ code: 0, msg: '', data: rows.reverse() }));
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const status = new StatusStream();
    const events: StatusEvent[] = [];
    status.subscribe((e) => events.push(e));
    client = new RestClient({ config: EnvSchema.parse({}), venue: bingxSwap, restUrl: `http://127.0.0.1:${port}`, status, log: pino({ level: 'silent' }), retryBaseMs: 10 });
    const [ref] = registerVenueStreams(new StreamRegistry(), bingxSwap, ['BTC-USDT'], ['1m']);
    const range = await client.fetchRange(ref!, end, end + 2 * MIN, new AbortController().signal);
    expect(range.candles.map((c) => c.openTime)).toEqual([end, end + MIN]);
    expect(range.frontier).toBe(end + 2 * MIN);
    expect(arrivals).toHaveLength(2);
    expect((arrivals[1] ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThanOrEqual(990);
    expect(client.stats().rateLimited).toBe(1);
    expect(events.filter((e) => e.type === 'ratelimit')).toMatchObject([{ venue: 'bingx-swap', scope: 'rest', kind: '429', retryAfterMs: 1000 }]);
  });
});
