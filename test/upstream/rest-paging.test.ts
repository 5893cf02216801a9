/**
 * The REST recovery loop pages in either order (issue 13 point 1): a fake venue's klines over real
 * HTTP on port 0, newest first like Bybit and OKX (a page is the newest `limit` rows up to its end)
 * or oldest first like Binance. Either way the range comes back ascending, each candle once, the
 * forming newest row left out, holes absent, and the frontier says how far REST has got.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { pino } from 'pino';
import { EnvSchema } from '../../src/config/schema.ts';
import { StatusStream } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { RestClient } from '../../src/upstream/rest.ts';
import { registerVenueStreams } from '../../src/upstream/venue.ts';
import { fakeVenue } from './fake-venue.ts';

const MIN = 60_000;
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % MIN);

interface FakeRest {
  readonly url: string;
  /** (start, end) of every request, in order. */
  readonly requests: Array<{ start: number; end: number }>;
  close(): Promise<void>;
}

let http: FakeRest | undefined;
let rest: RestClient | undefined;

afterEach(async () => {
  await rest?.close();
  await http?.close();
  rest = undefined;
  http = undefined;
});

/** Serves 1m rows with open times in `have`, `order` first, at most `limit` of the newest (newest-first) or oldest (oldest-first) in [start, end]. */
async function serve(have: readonly number[], order: 'newest-first' | 'oldest-first', options: { duplicate?: number } = {}): Promise<FakeRest> {
  const requests: Array<{ start: number; end: number }> = [];
  const server: Server = createServer((req, res) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const start = Number(q.get('start'));
    const end = Number(q.get('end'));
    const limit = Number(q.get('limit'));
    requests.push({ start, end });
    const inRange = have.filter((t) => t >= start && t <= end).sort((a, b) => a - b);
    const page = order === 'newest-first' ? inRange.slice(-limit).reverse() : inRange.slice(0, limit);
    const rows = page.map((t) => [t, '1', '2', '0.5', '1.5', '10']);
    if (options.duplicate !== undefined && page.includes(options.duplicate)) rows.push([options.duplicate, '1', '2', '0.5', '1.5', '10']);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(rows));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

function client(url: string, order: 'newest-first' | 'oldest-first', pageLimit: number, nowWall: number) {
  const config = EnvSchema.parse({});
  const venue = fakeVenue({ order, pageLimit });
  const registry = new StreamRegistry();
  const [stream] = registerVenueStreams(registry, venue, ['AAA'], ['1m']);
  const clock = { now: () => nowWall, monotonic: () => performance.now() };
  const r = new RestClient({ config, venue, restUrl: url, status: new StatusStream(), log: pino({ level: 'silent' }), clock, retryBaseMs: 10 });
  return { rest: r, stream: stream! };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i * MIN);

describe('REST paging in either order', () => {
  it('walks a newest-first venue backwards and returns the range ascending, each candle once', async () => {
    // 10 candles wanted, REST has them and the one after; pages of 4: three requests, newest first.
    const s = (http = await serve(range(T0, 12), 'newest-first', { duplicate: T0 + 4 * MIN }));
    const c = client(s.url, 'newest-first', 4, T0 + 20 * MIN);
    rest = c.rest;
    const got = await c.rest.fetchRange(c.stream, T0, T0 + 10 * MIN);
    expect(got.candles.map((x) => x.openTime)).toEqual(range(T0, 10));
    expect(got.candles.every((x) => x.closed && x.source === 'rest')).toBe(true);
    expect(got.frontier).toBe(T0 + 10 * MIN); // one past the range: REST is past it
    // Each page ends just before the previous page's oldest row; the last one reaches the start.
    expect(s.requests).toEqual([
      { start: T0, end: T0 + 10 * MIN },
      { start: T0, end: T0 + 7 * MIN - 1 },
      { start: T0, end: T0 + 3 * MIN - 1 },
    ]);
  });

  it('leaves the forming newest row out and reports it as the frontier (REST has not closed it yet)', async () => {
    const s = (http = await serve(range(T0, 6), 'newest-first'));
    // Now is inside the candle at T0+5: it is still forming.
    const c = client(s.url, 'newest-first', 100, T0 + 5 * MIN + 30_000);
    rest = c.rest;
    const got = await c.rest.fetchRange(c.stream, T0, T0 + 6 * MIN);
    expect(got.candles.map((x) => x.openTime)).toEqual(range(T0, 5));
    expect(got.frontier).toBe(T0 + 5 * MIN);
  });

  it('never invents a candle REST does not have: a hole is absent and the frontier is past it', async () => {
    const have = range(T0, 8).filter((t) => t !== T0 + 3 * MIN);
    const s = (http = await serve(have, 'newest-first'));
    const c = client(s.url, 'newest-first', 3, T0 + 20 * MIN);
    rest = c.rest;
    const got = await c.rest.fetchRange(c.stream, T0, T0 + 6 * MIN);
    expect(got.candles.map((x) => x.openTime)).toEqual([T0, T0 + MIN, T0 + 2 * MIN, T0 + 4 * MIN, T0 + 5 * MIN]);
    expect(got.frontier).toBe(T0 + 6 * MIN);
  });

  it('walks an oldest-first venue forwards the same way, with the same answer', async () => {
    const s = (http = await serve(range(T0, 12), 'oldest-first', { duplicate: T0 + 2 * MIN }));
    const c = client(s.url, 'oldest-first', 4, T0 + 20 * MIN);
    rest = c.rest;
    const got = await c.rest.fetchRange(c.stream, T0, T0 + 10 * MIN);
    expect(got.candles.map((x) => x.openTime)).toEqual(range(T0, 10));
    expect(got.frontier).toBe(T0 + 10 * MIN);
    expect(s.requests.map((r) => r.start)).toEqual([T0, T0 + 4 * MIN, T0 + 8 * MIN]);
  });
});
