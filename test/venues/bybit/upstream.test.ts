/**
 * The Bybit adapter through the real venue-agnostic upstream, against tiny in-process peers on port 0
 * (a `ws` server speaking Bybit's public protocol, an HTTP server answering Get Kline), for what the
 * adapter needed the upstream to learn (listed in venue.ts): a frame carrying several candles
 * (FrameParser.more), Bybit's own connection-attempt cap (WsProtocol.maxConnectionAttemptsPer5Min),
 * its 5-second REST window (RestPage.window), and its 403 ten-minute ban.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Pool, type Dispatcher } from 'undici';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { EnvSchema } from '../../../src/config/schema.ts';
import type { Candle } from '../../../src/core/candle.ts';
import { StatusStream, type StatusEvent } from '../../../src/core/status.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { UpstreamPool } from '../../../src/upstream/pool.ts';
import { RestClient } from '../../../src/upstream/rest.ts';
import { registerVenueStreams, type VenueAdapter } from '../../../src/upstream/venue.ts';
import { bybitSpot } from '../../../src/venues/bybit/market.ts';

const MIN = 60_000;
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % MIN);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function kline(start: number, confirm: boolean): Record<string, unknown> {
  return { start, end: start + MIN - 1, interval: '1', open: '1', close: '2', high: '3', low: '0.5', volume: '10', turnover: '20', confirm, timestamp: start + 1 };
}

interface BybitWs {
  readonly url: string;
  /** Text frames received, in order. */
  readonly texts: string[];
  /** Upgrade requests seen (refused ones included). */
  upgrades: number;
  /** Answer upgrades with this HTTP status instead of accepting them. */
  refuseWith: number | undefined;
  readonly sockets: WebSocket[];
}

async function bybitWs(): Promise<BybitWs> {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  const s: BybitWs = { url: '', texts: [], upgrades: 0, refuseWith: undefined, sockets: [] };
  server.on('upgrade', (req, socket, head) => {
    s.upgrades++;
    if (s.refuseWith !== undefined) {
      socket.end(`HTTP/1.1 ${s.refuseWith} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      s.sockets.push(ws);
      ws.on('message', (data: Buffer) => {
        const text = data.toString('utf8');
        s.texts.push(text);
        const msg = JSON.parse(text) as { op?: string; req_id?: string };
        // Connect: the spot ack and the spot pong.
        if (msg.op === 'subscribe') ws.send(JSON.stringify({ success: true, ret_msg: 'subscribe', conn_id: 'c', req_id: msg.req_id ?? '', op: 'subscribe' }));
        if (msg.op === 'ping') ws.send(JSON.stringify({ success: true, ret_msg: 'pong', conn_id: 'c', op: 'ping' }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  return Object.assign(s, { url: `ws://127.0.0.1:${port}/v5/public/spot` });
}

function startPool(venue: VenueAdapter, url: string, symbols: readonly string[], env: Record<string, number> = {}) {
  const config = EnvSchema.parse({
    CONNECTOR_RECONNECT_BASE_MS: 1,
    CONNECTOR_RECONNECT_MAX_MS: 2,
    CONNECTOR_RECONNECT_MAX_RETRIES: 1_000_000,
    CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: 1000,
    ...env,
  });
  const registry = new StreamRegistry();
  const streams = registerVenueStreams(registry, venue, symbols, ['1m']);
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const candles: Candle[] = [];
  const pool = new UpstreamPool({
    config,
    venue,
    wsUrl: url,
    streams,
    registry,
    status,
    log: pino({ level: 'silent' }),
    handlers: { candle: (c) => candles.push(c), resync: () => undefined },
  });
  cleanups.push(() => pool.close());
  return { pool, candles, events, streams };
}

describe('Bybit through the upstream pool', () => {
  it('subscribes in 10-arg requests, pings {"op":"ping"}, and delivers every candle of a multi-candle frame in open-time order', async () => {
    const ws = await bybitWs();
    const symbols = Array.from({ length: 12 }, (_, i) => `S${i}USDT`);
    // Bybit's heartbeat with its 20 s interval scaled down, so the test sees pings.
    const hb = bybitSpot.ws.heartbeat;
    const fast: VenueAdapter = { ...bybitSpot, ws: { ...bybitSpot.ws, heartbeat: hb.kind === 'client-json' ? { ...hb, intervalMs: 100 } : hb } };
    const x = startPool(fast, ws.url, symbols);
    await x.pool.start();
    await until('two subscribe requests', () => ws.texts.filter((t) => t.includes('"op":"subscribe"')).length >= 2);
    const subs = ws.texts.filter((t) => t.includes('"op":"subscribe"')).map((t) => JSON.parse(t) as { args: string[]; req_id: string });
    expect(subs.map((s) => s.args.length)).toEqual([10, 2]);
    expect(subs.flatMap((s) => s.args)).toEqual(symbols.map((s) => `kline.1.${s}`));

    // One frame: the next candle's update first on the wire, then the closing one.
    ws.sockets[0]?.send(JSON.stringify({ topic: 'kline.1.S0USDT', data: [kline(T0 + MIN, false), kline(T0, true)], ts: T0 + MIN + 5, type: 'snapshot' }));
    await until('both candles of the frame', () => x.candles.length >= 2);
    expect(x.candles.map((c) => [c.stream.name, c.openTime - T0, c.closed])).toEqual([
      ['bybit-spot:s0usdt@kline_1m', 0, true],
      ['bybit-spot:s0usdt@kline_1m', MIN, false],
    ]);
    await until('two pings', () => ws.texts.filter((t) => t === '{"op":"ping"}').length >= 2);
    // The pongs were taken for what they are: neither data nor errors.
    expect(x.pool.stats().parseErrors).toBe(0);
    expect(x.pool.stats().messages).toBe(subs.length + 1);
  });

  it('never makes more than Bybit’s share of 250 connection attempts per 5 minutes, even when the configuration allows 300', async () => {
    const ws = await bybitWs();
    ws.refuseWith = 500;
    const x = startPool(bybitSpot, ws.url, ['BTCUSDT'], { CONNECTOR_MAX_CONNECTION_ATTEMPTS_PER_5MIN: 300 });
    await x.pool.start();
    await until('the attempt budget spent', () => x.events.some((e) => e.type === 'ratelimit' && e.kind === 'attempt-budget'), 20_000);
    // Nothing more gets out while the window lasts.
    await new Promise((r) => setTimeout(r, 200));
    expect(ws.upgrades).toBe(250);
    expect(x.pool.stats().connectionAttempts).toBe(250);
  });
});

interface KlineHttp {
  readonly url: string;
  /** The query of every request, in arrival order. */
  readonly requests: Array<{ query: URLSearchParams }>;
  /** Status of the next answers (then 200). */
  statuses: number[];
}

async function klineHttp(): Promise<KlineHttp> {
  const h: KlineHttp = { url: '', requests: [], statuses: [] };
  const server: Server = createServer((req, res) => {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    h.requests.push({ query });
    const status = h.statuses.shift() ?? 200;
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    if (status !== 200) {
      res.end('access too frequent');
      return;
    }
    const start = Number(query.get('start'));
    const end = Number(query.get('end'));
    const list: string[][] = [];
    for (let t = end - (end % MIN); t >= start; t -= MIN) list.push([String(t), '1', '3', '0.5', '2', '10', '20']);
    res.end(JSON.stringify({ retCode: 0, retMsg: 'OK', result: { category: 'spot', symbol: query.get('symbol'), list: list.slice(0, Number(query.get('limit'))) }, retExtInfo: {}, time: 1 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  return Object.assign(h, { url: `http://127.0.0.1:${port}` });
}

/** The REST client's dispatcher, noting when each request leaves (what the venue's window counts, before any network delay). */
class RecordingPool extends Pool {
  readonly sentAt: number[] = [];
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.sentAt.push(performance.now());
    return super.dispatch(options, handler);
  }
}

function restClient(venue: VenueAdapter, url: string) {
  const registry = new StreamRegistry();
  const [stream] = registerVenueStreams(registry, venue, ['BTCUSDT'], ['1m']);
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const dispatcher = new RecordingPool(url);
  const rest = new RestClient({ config: EnvSchema.parse({}), venue, restUrl: url, status, log: pino({ level: 'silent' }), retryBaseMs: 10, dispatcher });
  cleanups.push(() => dispatcher.close());
  cleanups.push(() => rest.close());
  return { rest, stream: stream!, events, sentAt: dispatcher.sentAt };
}

describe('Bybit REST through the recovery client', () => {
  it('walks Get Kline newest-first pages back from the end of the range and returns it ascending, each candle once', async () => {
    const h = await klineHttp();
    const narrow: VenueAdapter = { ...bybitSpot, rest: { ...bybitSpot.rest, page: (s, a, b) => ({ ...bybitSpot.rest.page(s, a, b, 4), limit: 4 }) } };
    const { rest, stream } = restClient(narrow, h.url);
    const candles = await rest.fetchClosed(stream, T0, T0 + 10 * MIN);
    expect(candles.map((c) => (c.openTime - T0) / MIN)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(h.requests.length).toBeGreaterThan(1);
    expect(h.requests.every((r) => r.query.get('category') === 'spot' && r.query.get('interval') === '1' && r.query.has('start') && !r.query.has('startTime'))).toBe(true);
  });

  it('keeps within its short window: never more than its limit of requests in any trailing windowMs (the window scaled down from 500 per 5 s)', async () => {
    const h = await klineHttp();
    const windowMs = 400;
    const scaled: VenueAdapter = {
      ...bybitSpot,
      rest: { ...bybitSpot.rest, page: (s, a, b, w) => ({ ...bybitSpot.rest.page(s, a, b, w), window: { key: 'bybit:rest', limit: 3, windowMs } }) },
    };
    const { rest, stream, sentAt } = restClient(scaled, h.url);
    await Promise.all(Array.from({ length: 9 }, (_, i) => rest.fetchClosed(stream, T0 + i * MIN, T0 + (i + 1) * MIN)));
    expect(h.requests).toHaveLength(9);
    expect(sentAt).toHaveLength(9);
    // Any 4 consecutive sends span the window: the client stamps a request just before it hands it to the
    // dispatcher, which stamps it here, so the two stamps differ by that synchronous step (a GC pause at
    // worst). 20 ms covers it; without the window the four would go within a few ms of each other.
    for (let i = 3; i < sentAt.length; i++) expect((sentAt[i] ?? 0) - (sentAt[i - 3] ?? 0)).toBeGreaterThanOrEqual(windowMs - 20);
  });

  it('after a 403 sends no REST request for 10 minutes and reports the IP banned until then', async () => {
    const h = await klineHttp();
    h.statuses = [403];
    const { rest, stream, events } = restClient(bybitSpot, h.url);
    const before = Date.now();
    const pending = rest.fetchClosed(stream, T0, T0 + MIN).catch((err: unknown) => err);
    await until('the 403', () => events.some((e) => e.type === 'ratelimit'));
    expect(events.find((e) => e.type === 'ratelimit')).toMatchObject({ venue: 'bybit-spot', scope: 'rest', kind: '403', retryAfterMs: 600_000 });
    const banned = rest.stats().bannedUntil ?? 0;
    expect(banned).toBeGreaterThanOrEqual(before + 600_000 - 1000);
    await new Promise((r) => setTimeout(r, 500));
    expect(h.requests).toHaveLength(1);
    await rest.close();
    expect(await pending).toBeInstanceOf(Error);
    expect(h.requests).toHaveLength(1);
  });
});
