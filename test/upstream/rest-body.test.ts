/**
 * A REST answer with status 200 and a body that is not JSON (a proxy's HTML page, a cut-off body) is the
 * venue's bad body, like JSON that is not its klines: retried, and if it stays bad, a `CONNECTOR_ERR_REST_BODY`
 * error the caller counts as a parse error; never a stray SyntaxError that skips the retries and the
 * breaker. Against a real HTTP peer on port 0.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { EnvSchema } from '../../src/config/schema.ts';
import { openTimeAt } from '../../src/core/intervals.ts';
import { StatusStream } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { RestClient } from '../../src/upstream/rest.ts';
import { registerVenueStreams } from '../../src/upstream/venue.ts';
import { pionexSpot } from '../../src/venues/pionex/spot.ts';

const MIN = 60_000;
let server: Server | undefined;
let rest: RestClient | undefined;

afterEach(async () => {
  await rest?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  rest = undefined;
  server = undefined;
});

/** A klines peer whose first `bad` answers are 200 with `body`, then good ones. */
async function peer(bad: number, body: string): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  server = createServer((req, res) => {
    requests++;
    if (requests <= bad) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const end = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('endTime'));
    const klines = [0, 1].map((i) => ({ time: openTimeAt('1m', end) - i * MIN, open: '1', close: '1', high: '1', low: '1', volume: '1' }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: true, data: { klines } }));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

function client(url: string): { rest: RestClient; stream: ReturnType<typeof registerVenueStreams>[number] } {
  const config = EnvSchema.parse({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: 'BTC_USDT', CONNECTOR_PIONEX_REST_URL: url });
  rest = new RestClient({ config, venue: pionexSpot, restUrl: url, status: new StatusStream(), log: pino({ level: 'silent' }), retryBaseMs: 10 });
  const [stream] = registerVenueStreams(new StreamRegistry(), pionexSpot, ['BTC_USDT'], ['1m']);
  if (stream === undefined) throw new Error('no stream');
  return { rest, stream };
}

describe('REST: a 200 whose body is not JSON', () => {
  it('is retried like any bad body, and the next good answer is used', async () => {
    const p = await peer(2, '<html><body>502 Bad Gateway</body></html>');
    const { rest: r, stream } = client(p.url);
    const to = openTimeAt('1m', Date.now());
    const got = await r.fetchRange(stream, to - MIN, to);
    expect(got.candles.map((c) => c.openTime)).toEqual([to - MIN]);
    expect(p.requests()).toBe(3);
  });

  it('that stays bad is a CONNECTOR_ERR_REST_BODY error after the client’s attempts, not a SyntaxError', async () => {
    const p = await peer(100, '{"result":true,"data":{"klines":[');
    const { rest: r, stream } = client(p.url);
    const to = openTimeAt('1m', Date.now());
    await expect(r.fetchRange(stream, to - MIN, to)).rejects.toMatchObject({ name: 'RestError', code: 'CONNECTOR_ERR_REST_BODY', status: 200 });
    expect(p.requests()).toBe(4);
  });
});
