/**
 * The Bybit simulators (src/venues/bybit/simulator/) on port 0 with real `ws` and fetch clients: each
 * behaviour the dialect takes from bybit-exchange/docs (Connect, Kline, Get Kline, Rate Limit Rules),
 * and the daemon's own adapter reading what they send (the simulator's frames and rows parse into the
 * candles its truth says the relay must deliver).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StatusStream } from '../../../src/core/status.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import type { Candle } from '../../../src/core/candle.ts';
import type { VenueSimulator } from '../../../src/simulator/dialect.ts';
import { isCandle, registerVenueStreams } from '../../../src/upstream/venue.ts';
import { bybitLinear, bybitSpot } from '../../../src/venues/bybit/market.ts';
import { BybitFrameParser } from '../../../src/venues/bybit/protocol.ts';
import { bybitDecimal } from '../../../src/venues/bybit/simulator/dialect.ts';
import { bybitSpotSimulator, bybitLinearSimulator, bybitTruth } from '../../../src/venues/bybit/simulator/index.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

const sims: VenueSimulator[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const w of sockets.splice(0)) w.terminate();
  for (const s of sims.splice(0)) await s.close();
});

/** A wall clock running `speed` times real time from `start`. */
function fastClock(start: number, speed: number): () => number {
  const t0 = Date.now();
  return () => start + (Date.now() - t0) * speed;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Client {
  readonly ws: WebSocket;
  readonly texts: string[];
  send(v: unknown): void;
  close: { code: number; reason: string } | undefined;
}

async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  sockets.push(ws);
  const c: Client = {
    ws,
    texts: [],
    send: (v) => {
      ws.send(typeof v === 'string' ? v : JSON.stringify(v));
    },
    close: undefined,
  };
  ws.on('message', (d: Buffer) => {
    c.texts.push(d.toString('utf8'));
  });
  ws.on('close', (code, reason) => {
    c.close = { code, reason: reason.toString() };
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      resolve();
    });
    ws.once('error', reject);
  });
  return c;
}

async function start(which: 'spot' | 'linear', options: Parameters<typeof bybitSpotSimulator.start>[0] = {}): Promise<VenueSimulator> {
  const s = await (which === 'spot' ? bybitSpotSimulator : bybitLinearSimulator).start({ host: '127.0.0.1', port: 0, ...options });
  sims.push(s);
  return s;
}

const replies = (c: Client) => c.texts.filter((t) => !t.startsWith('{"topic"')).map((t) => JSON.parse(t) as Record<string, unknown>);

describe('Bybit simulator: WebSocket', () => {
  it('serves the documented public endpoints only, and answers subscribes and pings in each category’s shape', async () => {
    const spot = await start('spot');
    const linear = await start('linear');
    expect(spot.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/v5\/public\/spot$/);
    expect(linear.wsUrl).toMatch(/\/v5\/public\/linear$/);
    await expect(connect(spot.wsUrl.replace('/spot', '/linear'))).rejects.toThrow(/404/);

    const a = await connect(spot.wsUrl);
    a.send({ req_id: '10001', op: 'subscribe', args: ['kline.1.BTCUSDT'] });
    a.send({ op: 'ping' });
    await until('spot replies', () => replies(a).length >= 2);
    expect(replies(a)).toEqual([
      { success: true, ret_msg: 'subscribe', conn_id: expect.any(String) as unknown, req_id: '10001', op: 'subscribe' },
      { success: true, ret_msg: 'pong', conn_id: expect.any(String) as unknown, op: 'ping' },
    ]);
    const b = await connect(linear.wsUrl);
    b.send({ op: 'subscribe', args: ['kline.1.BTCUSDT'] });
    b.send({ op: 'ping' });
    await until('linear replies', () => replies(b).length >= 2);
    expect(replies(b)).toEqual([
      { success: true, ret_msg: '', conn_id: expect.any(String) as unknown, req_id: '', op: 'subscribe' },
      { success: true, ret_msg: 'pong', conn_id: expect.any(String) as unknown, req_id: '', op: 'ping' },
    ]);
    // The pong prefix the adapter looks for fits both.
    const hb = bybitSpot.ws.heartbeat;
    for (const c of [a, b]) expect(c.texts.find((t) => t.includes('"pong"'))?.startsWith(hb.kind === 'client-json' ? hb.pongPrefix : '?')).toBe(true);
    expect(spot.counters.pingsReceived).toBe(1);
  });

  it('refuses more than 10 args per request on spot only, unknown topics, and more than 21,000 characters of args on one connection', async () => {
    const spot = await start('spot');
    const linear = await start('linear');
    const eleven = Array.from({ length: 11 }, (_, i) => `kline.1.S${i}USDT`);
    const a = await connect(spot.wsUrl);
    a.send({ req_id: '1', op: 'subscribe', args: eleven });
    a.send({ req_id: '2', op: 'subscribe', args: ['kline.2.BTCUSDT'] });
    await until('two refusals', () => replies(a).length >= 2);
    expect(replies(a).map((r) => [r['success'], r['req_id']])).toEqual([
      [false, '1'],
      [false, '2'],
    ]);
    expect(spot.sockets()[0]?.streams).toEqual([]);
    const b = await connect(linear.wsUrl);
    b.send({ req_id: '1', op: 'subscribe', args: eleven });
    await until('the linear ack', () => replies(b).length >= 1);
    expect(replies(b)[0]).toMatchObject({ success: true, op: 'subscribe' });
    // 21,000 characters: about 1,000 topics of this length; the one that would pass the cap is refused.
    const many = Array.from({ length: 1200 }, (_, i) => `kline.1.SYMBOL${i}USDT`);
    b.send({ req_id: '2', op: 'subscribe', args: many });
    await until('the refusal', () => replies(b).length >= 2);
    expect(replies(b)[1]).toMatchObject({ success: false, req_id: '2', ret_msg: expect.stringMatching(/21000 characters/) as unknown });
    expect(linear.sockets()[0]?.streams).toHaveLength(11);
  });

  it('sends kline messages the adapter parses into the truth, the closing candle together with the next one’s opening in one message', async () => {
    const now = fastClock(T0 + 30_000, 600); // a 1m candle closes every 100 ms
    const spot = await start('spot', { now, openUpdateMs: 20 });
    const c = await connect(spot.wsUrl);
    c.send({ op: 'subscribe', args: ['kline.1.BTCUSDT'] });
    await until('three closed candles', () => c.texts.filter((t) => t.includes('"confirm":true')).length >= 3);
    const registry = new StreamRegistry();
    const [ref] = registerVenueStreams(registry, bybitSpot, ['BTCUSDT'], ['1m']);
    const parser = new BybitFrameParser({ venue: 'bybit-spot', registry, status: new StatusStream(), clock: { now, monotonic: () => performance.now() } });
    const candles: Candle[] = [];
    const closing: string[] = [];
    for (const t of c.texts.filter((x) => x.startsWith('{"topic"'))) {
      const first = parser.parse(Buffer.from(t), 0);
      expect(isCandle(first), t).toBe(true);
      if (!isCandle(first)) continue;
      candles.push(first);
      for (let m = parser.more(); m !== undefined; m = parser.more()) candles.push(m);
      if (t.includes('"confirm":true')) closing.push(t);
    }
    expect(parser.parseErrors).toBe(0);
    expect(candles.every((x) => x.stream === ref)).toBe(true);
    const orders = new Set<string>();
    for (const t of closing) {
      const data = (JSON.parse(t) as { data: Array<{ start: number; confirm: boolean }> }).data;
      const [closed, opening] = data[0]?.confirm === true ? [data[0], data[1]] : [data[1], data[0]];
      expect([data.length, closed?.confirm, opening?.confirm]).toEqual([2, true, false]);
      expect((opening?.start ?? 0) - (closed?.start ?? 0)).toBe(MIN);
      orders.add(data[0]?.confirm === true ? 'closed first' : 'opening first');
    }
    // Both orders occur (a client may rely on neither).
    expect([...orders].sort()).toEqual(['closed first', 'opening first']);
    // Whatever the order on the wire, the parser hands out the closed candle ahead of the next one.
    for (let i = 1; i < candles.length; i++) expect(candles[i]?.openTime ?? 0).toBeGreaterThanOrEqual(candles[i - 1]?.openTime ?? 0);
    for (const x of candles.filter((k) => k.closed)) {
      const truth = bybitTruth('spot', 'BTCUSDT', '1m', x.openTime);
      expect({ o: x.open, h: x.high, l: x.low, c: x.close, v: x.volume, q: x.quoteVolume, T: x.closeTime }).toEqual({ o: truth.o, h: truth.h, l: truth.l, c: truth.c, v: truth.v, q: truth.q, T: truth.T });
    }
    // Bybit's decimals carry no trailing zeros.
    expect(candles.every((x) => [x.open, x.high, x.low, x.close, x.volume].every((d) => d === bybitDecimal(d)))).toBe(true);
  });

  it('drops a socket that sent nothing for 10 minutes (scaled down) and sends malformed frames on the garbage fault', async () => {
    const spot = await start('spot', { pongTimeoutMs: 300 });
    const silent = await connect(spot.wsUrl);
    await until('the silent socket dropped', () => silent.close !== undefined, 3000);
    expect(spot.counters.closedByHeartbeat).toBe(1);
    const c = await connect(spot.wsUrl);
    spot.faults.garbage(3);
    await until('three garbage frames', () => c.texts.length >= 3);
    const registry = new StreamRegistry();
    registerVenueStreams(registry, bybitSpot, ['BTCUSDT'], ['1m']);
    const parser = new BybitFrameParser({ venue: 'bybit-spot', registry, status: new StatusStream(), clock: { now: () => 0, monotonic: () => 0 } });
    for (const t of c.texts) expect(isCandle(parser.parse(Buffer.from(t), 0))).toBe(false);
    expect(parser.parseErrors).toBe(3);
  });
});

describe('Bybit simulator: REST', () => {
  it('answers Get Kline newest first with seven strings per row, the forming candle first, holes absent; category defaults to linear', async () => {
    const now = () => T0 + 5 * MIN + 30_000;
    const linear = await start('linear', { now });
    linear.faults.hole('BTCUSDT', '1m', T0 + MIN, T0 + 2 * MIN);
    const url = `${linear.restUrl}/v5/market/kline?symbol=BTCUSDT&interval=1&start=${T0}&end=${T0 + 10 * MIN}&limit=1000`;
    const body = (await (await fetch(url)).json()) as { retCode: number; result: { category: string; symbol: string; list: string[][] } };
    expect(body.retCode).toBe(0);
    expect(body.result.category).toBe('linear');
    expect(body.result.list.map((r) => (Number(r[0]) - T0) / MIN)).toEqual([5, 4, 3, 2, 0]);
    expect(body.result.list.every((r) => r.length === 7 && r.every((x) => typeof x === 'string'))).toBe(true);
    const [ref] = registerVenueStreams(new StreamRegistry(), bybitLinear, ['BTCUSDT'], ['1m']);
    const rows = bybitLinear.rest.parse(body, ref!, 0, 0);
    if (typeof rows === 'string') throw new Error(rows);
    const truth = bybitTruth('linear', 'BTCUSDT', '1m', T0 + 3 * MIN);
    expect(rows.find((r) => r.openTime === T0 + 3 * MIN)).toMatchObject({ open: truth.o, high: truth.h, low: truth.l, close: truth.c, volume: truth.v, quoteVolume: truth.q });
    // The spot simulator serves only spot: no category means linear.
    const spot = await start('spot', { now });
    const refused = (await (await fetch(`${spot.restUrl}/v5/market/kline?symbol=BTCUSDT&interval=1`)).json()) as { retCode: number };
    expect(refused.retCode).toBe(10001);
    const limit = (await (await fetch(`${spot.restUrl}/v5/market/kline?category=spot&symbol=BTCUSDT&interval=1&limit=1001`)).json()) as { retCode: number };
    expect(limit.retCode).toBe(10001);
  });

  it('answers past 600 requests per 5 s with 403 and a 10-minute ban, counting every request inside it', async () => {
    const spot = await start('spot', { restCapacity: 5 });
    const url = `${spot.restUrl}/v5/market/kline?category=spot&symbol=BTCUSDT&interval=1&limit=1`;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await fetch(url)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 403]);
    await new Promise((r) => setTimeout(r, 80)); // past the in-flight grace
    const again = await fetch(url);
    expect(again.status).toBe(403);
    expect(await again.text()).toBe('access too frequent');
    expect(spot.counters.restBanned).toBeGreaterThanOrEqual(1);
    expect(spot.counters.restInsideRetryAfter).toBe(1);
  });

  it('injects the venue’s gate answer (403) with its 10-minute back-off, and 429 with the fault’s Retry-After', async () => {
    const spot = await start('spot');
    const url = `${spot.restUrl}/v5/market/kline?category=spot&symbol=BTCUSDT&interval=1&limit=1`;
    spot.faults.restErrors(1, 403);
    expect((await fetch(url)).status).toBe(403);
    await new Promise((r) => setTimeout(r, 80));
    expect((await fetch(url)).status).toBe(200);
    expect(spot.counters.restInsideRetryAfter).toBe(1);
    const other = await start('linear');
    const lurl = `${other.restUrl}/v5/market/kline?category=linear&symbol=BTCUSDT&interval=1&limit=1`;
    other.faults.restErrors(1, 429, 1);
    const throttled = await fetch(lurl);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('1');
    await new Promise((r) => setTimeout(r, 80));
    expect((await fetch(lurl)).status).toBe(200);
    expect(other.counters.restInsideRetryAfter).toBe(1);
  });
});
