/**
 * The venue-agnostic rate seams a venue supplies as data (venue.ts; OKX is the first user, issue 16):
 * a short per-IP window on connection attempts (`ws.connectRate`, OKX 3/s), a per-socket window on
 * subscribe frames (`ws.subscribeRate`, OKX 480/h), a per-endpoint request window on REST pages
 * (`RestPage.window`, OKX 40 per 2 s on /candles), and a 200 body read as a rate-limit refusal
 * (`rest.refusal`, OKX code 50011) that closes the REST gate. A tiny fake venue against real peers on
 * port 0; the windows are shortened so the waits are a second or two, and every assertion is on what
 * the peer saw.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pino } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { EnvSchema } from '../../src/config/schema.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import type { WebSocketFactory } from '../../src/upstream/connection.ts';
import { UpstreamPool } from '../../src/upstream/pool.ts';
import { RestClient } from '../../src/upstream/rest.ts';
import { registerVenueStreams, type VenueAdapter } from '../../src/upstream/venue.ts';
import { fakeVenue } from './fake-venue.ts';
import { eventsOf, waitFor } from './helpers.ts';

const MIN = 60_000;
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % MIN);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface WsPeer {
  readonly url: string;
  /** performance.now() of every accepted connection. */
  readonly connects: number[];
  /** performance.now() of every subscribe frame, and its args. */
  readonly subscribes: Array<{ at: number; args: string[] }>;
}

async function wsPeer(): Promise<WsPeer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const address = wss.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const peer: WsPeer = { url: `ws://127.0.0.1:${port}`, connects: [], subscribes: [] };
  wss.on('connection', (ws: WebSocket) => {
    peer.connects.push(performance.now());
    ws.on('message', (data) => {
      const v = JSON.parse((data as Buffer).toString('utf8')) as { op?: string; args?: string[] };
      if (v.op === 'sub') peer.subscribes.push({ at: performance.now(), args: v.args ?? [] });
    });
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => {
          resolve();
        });
      }),
  );
  return peer;
}

/**
 * What the pool did, stamped where it did it (socket creation, each frame sent): the windows bound
 * the daemon's own actions, and stamping them here keeps event-loop delays on a loaded machine out of
 * the figures (the peer's arrival stamps can bunch up behind a blocked loop).
 */
interface Sent {
  readonly opens: number[];
  readonly frames: number[];
}

function recordingFactory(sent: Sent): WebSocketFactory {
  return (url, options) => {
    sent.opens.push(performance.now());
    const ws = new WebSocket(url, options);
    const send = ws.send.bind(ws);
    ws.send = ((data: string) => {
      sent.frames.push(performance.now());
      send(data);
    }) as WebSocket['send'];
    return ws;
  };
}

function pool(venue: VenueAdapter, url: string, symbols: string[], sent: Sent, env: Record<string, number> = {}): UpstreamPool {
  const config = EnvSchema.parse({ CONNECTOR_STALE_STREAM_MS: 60_000, CONNECTOR_PING_TIMEOUT_MS: 60_000, ...env });
  const registry = new StreamRegistry();
  const p = new UpstreamPool({
    wsFactory: recordingFactory(sent),
    config,
    venue,
    wsUrl: url,
    streams: registerVenueStreams(registry, venue, symbols, ['1m']),
    registry,
    status: new StatusStream(),
    log: pino({ level: 'silent' }),
    handlers: { candle: () => undefined, resync: () => undefined },
  });
  cleanups.push(() => p.close());
  return p;
}

/** The most timestamps in `times` that fall inside any window of `ms`. */
function maxInWindow(times: readonly number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[i] ?? 0) - (sorted[j] ?? 0) >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('venue rate windows as data', () => {
  it('opens no more sockets in a short window than ws.connectRate allows, and still opens every one', async () => {
    const base = fakeVenue();
    const venue: VenueAdapter = { ...base, ws: { ...base.ws, connectRate: { limit: 2, windowMs: 600 } } };
    const peer = await wsPeer();
    const sent: Sent = { opens: [], frames: [] };
    const p = pool(venue, peer.url, ['AAA', 'BBB', 'CCC', 'DDD', 'EEE', 'FFF'], sent, { CONNECTOR_MAX_STREAMS_PER_CONNECTION: 1 });
    await p.start();
    await waitFor('six sockets', () => peer.connects.length === 6, 10_000);
    // Two at once, two a window later, two another window later.
    expect(sent.opens).toHaveLength(6);
    expect(maxInWindow(sent.opens, 600)).toBeLessThanOrEqual(2);
    expect((sent.opens[5] ?? 0) - (sent.opens[0] ?? 0)).toBeGreaterThanOrEqual(2 * 600);
  });

  it('sends no more subscribe frames on one socket in a window than ws.subscribeRate allows; the rest follow once it has room', async () => {
    const base = fakeVenue();
    const venue: VenueAdapter = {
      ...base,
      ws: { ...base.ws, subscribeBatches: (topics) => topics.map((t) => [t]), subscribeRate: { limit: 2, windowMs: 800 } },
    };
    const peer = await wsPeer();
    const sent: Sent = { opens: [], frames: [] };
    const p = pool(venue, peer.url, ['AAA', 'BBB', 'CCC', 'DDD'], sent);
    await p.start();
    await waitFor('four subscribe frames', () => peer.subscribes.length === 4, 10_000);
    expect(peer.connects).toHaveLength(1);
    expect(peer.subscribes.flatMap((s) => s.args)).toEqual(['k.AAA', 'k.BBB', 'k.CCC', 'k.DDD']);
    // Only subscribe frames were sent (no pings within the test's first seconds).
    expect(sent.frames).toHaveLength(4);
    expect(maxInWindow(sent.frames, 800)).toBeLessThanOrEqual(2);
    expect((sent.frames[2] ?? 0) - (sent.frames[0] ?? 0)).toBeGreaterThanOrEqual(800);
  });
});

interface RestPeer {
  readonly url: string;
  readonly times: number[];
  /** Answer the next `n` requests with HTTP 200 and this body instead of rows. */
  refuse: { n: number; body: string };
  /** Answer every request this late. */
  delayMs: number;
}

/** Newest-first 1m rows `[openTime]` for every minute in [start, end], at most `limit`. */
async function restPeer(): Promise<RestPeer> {
  const peer: RestPeer = { url: '', times: [], refuse: { n: 0, body: '' }, delayMs: 0 };
  const server: Server = createServer((req, res) => {
    peer.times.push(performance.now());
    if (peer.delayMs > 0) {
      setTimeout(() => {
        answer(req, res);
      }, peer.delayMs);
      return;
    }
    answer(req, res);
  });
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('content-type', 'application/json');
    if (peer.refuse.n > 0) {
      peer.refuse.n--;
      res.end(peer.refuse.body);
      return;
    }
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const start = Number(q.get('start'));
    const end = Number(q.get('end'));
    const limit = Number(q.get('limit'));
    const rows: number[][] = [];
    for (let t = end - (end % MIN); t >= start && rows.length < limit; t -= MIN) rows.push([t]);
    res.end(JSON.stringify(rows));
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  (peer as { url: string }).url = `http://127.0.0.1:${port}`;
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  return peer;
}

function restClient(venue: VenueAdapter, url: string) {
  const registry = new StreamRegistry();
  const [stream] = registerVenueStreams(registry, venue, ['AAA'], ['1m']);
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const clock = { now: () => T0 + 100 * MIN, monotonic: () => performance.now() };
  const rest = new RestClient({ config: EnvSchema.parse({}), venue, restUrl: url, status, log: pino({ level: 'silent' }), clock, retryBaseMs: 10 });
  cleanups.push(() => rest.close());
  return { rest, stream: stream!, events };
}

describe('REST rate windows as data', () => {
  it('sends no more requests of a page’s window key in its window than it allows, and still fetches the whole range', async () => {
    const base = fakeVenue({ pageLimit: 2 });
    const venue: VenueAdapter = {
      ...base,
      rest: { ...base.rest, page: (s, start, end, w, n) => ({ ...base.rest.page(s, start, end, w, n), window: { key: 'k', limit: 2, windowMs: 700 } }) },
    };
    const peer = await restPeer();
    const { rest, stream } = restClient(venue, peer.url);
    const got = await rest.fetchRange(stream, T0, T0 + 10 * MIN);
    expect(got.candles.map((c) => c.openTime)).toEqual(Array.from({ length: 10 }, (_, i) => T0 + i * MIN));
    expect(peer.times.length).toBeGreaterThanOrEqual(5);
    expect(maxInWindow(peer.times, 650)).toBeLessThanOrEqual(2);
  });

  it('counts a request in its window until windowMs after its answer (one held in the HTTP pool may reach the venue late)', async () => {
    const base = fakeVenue({ pageLimit: 2 });
    const venue: VenueAdapter = {
      ...base,
      rest: { ...base.rest, page: (s, start, end, w, n) => ({ ...base.rest.page(s, start, end, w, n), window: { key: 'k', limit: 1, windowMs: 400 } }) },
    };
    const peer = await restPeer();
    peer.delayMs = 500;
    const { rest, stream } = restClient(venue, peer.url);
    const got = await rest.fetchRange(stream, T0, T0 + 3 * MIN);
    expect(got.candles).toHaveLength(3);
    expect(peer.times).toHaveLength(2);
    // The second leaves 400 ms after the first one's answer, not 400 ms after the first left.
    expect((peer.times[1] ?? 0) - (peer.times[0] ?? 0)).toBeGreaterThanOrEqual(500 + 400 - 30);
  });

  it('reads a 200 body the venue calls a refusal as the status it stands for: the gate closes for that status\'s wait, then the same page is asked again', async () => {
    const base = fakeVenue({ pageLimit: 100 });
    const venue: VenueAdapter = {
      ...base,
      rest: {
        ...base.rest,
        gateStatuses: { ...base.rest.gateStatuses, 429: 600 },
        bodyStatus: (body: unknown) => (typeof body === 'object' && body !== null && 'code' in body && body.code === '50011' ? 429 : undefined),
      },
    };
    const peer = await restPeer();
    peer.refuse = { n: 1, body: '{"code":"50011","msg":"Rate limit reached.","data":[]}' };
    const { rest, stream, events } = restClient(venue, peer.url);
    const got = await rest.fetchRange(stream, T0, T0 + 5 * MIN);
    expect(got.candles).toHaveLength(5);
    expect(peer.times).toHaveLength(2);
    expect((peer.times[1] ?? 0) - (peer.times[0] ?? 0)).toBeGreaterThanOrEqual(600 - 20);
    expect(eventsOf(events, 'ratelimit')).toEqual([{ type: 'ratelimit', venue: 'fake', scope: 'rest', kind: '429', retryAfterMs: 600 }]);
    expect(rest.stats()).toMatchObject({ rateLimited: 1, errors: 0, bannedUntil: undefined });
  });
});
