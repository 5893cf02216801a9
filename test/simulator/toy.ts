/**
 * A toy venue dialect for the engine's own tests: small JSON frames, every mechanism a real venue may
 * pick (heartbeat model, encoding, closed flag, request limits, rate model) chosen per test. Also a
 * worked example of src/simulator/dialect.ts for venue engineers.
 *
 * Wire: subscribe `{"op":"sub","args":["BTCUSDT.1m"]}` → `{"op":"sub","ok":true}` (refused:
 * `{"op":"sub","ok":false,"why":<reason>}`); client ping `{"op":"ping"}` → `{"op":"pong"}`; server ping
 * `{"ping":"<id>"}` answered with `{"pong":"<id>"}`; event `{"topic":"BTCUSDT.1m","t":…,"o":…,"c":…,"x":…}`.
 * REST `GET /klines?symbol=&interval=&start=&end=&limit=` → `{"rows":[[t,o,c],…]}` newest first.
 */
import { gunzipSync } from 'node:zlib';
import { WebSocket } from 'ws';
import type { RawData } from 'ws';
import type { ControlOp, Heartbeat, RestAnswer, RestRateModel, StreamRef, VenueDialect, WsDialect, WsLimits } from '../../src/simulator/dialect.ts';
import { startSimulator } from '../../src/simulator/engine.ts';
import type { SimulatorEngine } from '../../src/simulator/engine.ts';
import type { SimulatorOptions } from '../../src/simulator/dialect.ts';

export const TOY_INTERVALS = new Set(['1s', '1m', '5m']);

export interface ToyOptions {
  readonly heartbeat?: Heartbeat;
  readonly encoding?: 'text' | 'gzip';
  readonly closed?: 'flag' | 'none';
  readonly limits?: Partial<WsLimits>;
  readonly rate?: Partial<RestRateModel>;
  /** No WebSocket at all (REST only). */
  readonly restOnly?: boolean;
  readonly rotation?: boolean;
  readonly updateMs?: number;
}

function answer(status: number, body: unknown, backoffMs?: number): RestAnswer {
  return backoffMs === undefined ? { status, body: JSON.stringify(body) } : { status, body: JSON.stringify(body), backoffMs };
}

function parseStream(name: string): StreamRef | undefined {
  const m = /^([A-Z0-9]{2,20})\.(1s|1m|5m)$/.exec(name);
  return m?.[1] !== undefined && m[2] !== undefined ? { symbol: m[1], interval: m[2] } : undefined;
}

function control(text: string): ControlOp {
  if (text === 'hello') return { kind: 'ignore' };
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return { kind: 'reply', replies: ['{"error":"bad json"}'] };
  }
  if (typeof o !== 'object' || o === null) return { kind: 'reply', replies: ['{"error":"not an object"}'] };
  const r = o as Record<string, unknown>;
  if (typeof r.pong === 'string') return { kind: 'pong', answers: r.pong };
  const args = Array.isArray(r.args) ? r.args.filter((a): a is string => typeof a === 'string') : [];
  switch (r.op) {
    case 'ping':
      return { kind: 'ping', replies: ['{"op":"pong"}'] };
    case 'sub':
    case 'unsub': {
      const op = r.op;
      return {
        kind: op === 'sub' ? 'subscribe' : 'unsubscribe',
        streams: args,
        ok: [`{"op":"${op}","ok":true}`],
        reject: (why) => ({ replies: [`{"op":"${op}","ok":false,"why":"${why}"}`] }),
      };
    }
    case 'bye':
      return { kind: 'reply', replies: ['{"op":"bye"}'], close: { code: 4000, reason: 'bye' } };
    default:
      return { kind: 'reply', replies: ['{"error":"unknown op"}'] };
  }
}

export function toyDialect(o: ToyOptions = {}): VenueDialect {
  const ws: WsDialect = {
    route: (path) => (path === '/ws' ? { streams: [], form: 0, delivers: true } : undefined),
    primaryPath: '/ws',
    streamOf: parseStream,
    updateMs: () => o.updateMs ?? 100,
    limits: {
      maxStreamsPerConnection: 3,
      maxInboundPerSecond: 50,
      inboundFlood: { close: { code: 1008, reason: 'flood' } },
      maxConnectionsPerWindow: 100,
      connectionWindowMs: 60_000,
      connectionMaxAgeMs: Infinity,
      ...o.limits,
    },
    heartbeat: o.heartbeat ?? { kind: 'client-ping', silenceMs: 60_000 },
    control: { parse: control },
    event: {
      frame: (u) => `{"topic":"${u.stream}","t":${u.candle.openTime},"o":"${u.candle.open}","c":"${u.candle.close}","x":${u.candle.closed}}`,
      closed: o.closed ?? 'flag',
    },
    encoding: o.encoding ?? 'text',
    ...(o.rotation === true ? { rotationNotice: (now: number) => `{"notice":"rotate","at":${now}}` } : {}),
    garbage: ['not json', '{"topic":'],
    rejectBody: (reason, detail) => JSON.stringify({ reason, detail }),
  };
  return {
    id: 'toy',
    title: 'Toy venue',
    series: { salt: 0x70_7e, priceDecimals: 'tick', baseDecimals: 4, quoteDecimals: 4, intervals: TOY_INTERVALS },
    ws: o.restOnly === true ? undefined : ws,
    rest: {
      endpoint: (path) => (path === '/klines' ? { kind: 'klines' } : path === '/time' ? { kind: 'static', body: (now) => `{"time":${now}}` } : undefined),
      parse: (params) => {
        const symbol = params.get('symbol');
        const interval = params.get('interval');
        if (symbol === null || interval === null || !TOY_INTERVALS.has(interval)) return answer(400, { error: 'bad symbol or interval' });
        const num = (name: string): Record<string, number> => {
          const raw = params.get(name);
          return raw === null ? {} : { [name === 'start' ? 'from' : 'to']: Number(raw) };
        };
        return {
          symbol,
          interval,
          limit: Number(params.get('limit') ?? '10'),
          take: 'newest',
          forming: params.get('forming') !== 'no',
          ...num('start'),
          ...num('end'),
        };
      },
      // Newest first, as Bybit and OKX answer.
      rows: (candles) => JSON.stringify({ rows: [...candles].reverse().map((c) => [c.openTime, c.open, c.close, c.closed]) }),
      rate: {
        windowMs: 1000,
        capacity: 5,
        cost: () => 1,
        limited: (ctx) => answer(429, { error: 'limited', retry: ctx.retryAfterSeconds }, ctx.retryAfterSeconds * 1000),
        banMs: 0,
        banExtendMs: 0,
        banned: (ctx) => answer(403, { error: 'banned', until: ctx.untilWall }, ctx.retryAfterSeconds * 1000),
        ...o.rate,
      },
      injected: (status, retryAfter, ms) =>
        status === 429 ? { ...answer(429, { error: 'injected' }, ms), headers: { 'Retry-After': retryAfter } } : answer(status, { error: 'injected' }),
      notFound: answer(404, { error: 'not found' }),
      methodNotAllowed: answer(405, { error: 'method' }),
      internalError: (msg) => answer(500, { error: msg }),
    },
  };
}

export function startToy(o: ToyOptions = {}, options: SimulatorOptions = {}): Promise<SimulatorEngine> {
  return startSimulator(toyDialect(o), { host: '127.0.0.1', port: 0, ...options });
}

/** A real `ws` client recording every frame as text (gunzipping binary frames when asked). */
export class ToyClient {
  readonly ws: WebSocket;
  readonly texts: string[] = [];
  readonly binary: boolean[] = [];
  close: { code: number; reason: string } | undefined;
  readonly opened: Promise<void>;

  constructor(url: string, gzip = false) {
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => {
        resolve();
      });
      this.ws.once('error', reject);
    });
    this.ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.binary.push(isBinary);
      this.texts.push(gzip && isBinary ? gunzipSync(buf).toString('utf8') : buf.toString('utf8'));
    });
    this.ws.on('close', (code: number, reason: Buffer) => {
      this.close = { code, reason: reason.toString('utf8') };
    });
    this.ws.on('error', () => {
      // recorded through 'close'
    });
  }

  send(obj: unknown): void {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  json(): Record<string, unknown>[] {
    return this.texts.map((t) => JSON.parse(t) as Record<string, unknown>);
  }
}

/** Poll `cond` every 10 ms until true; rejects after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function get(url: string): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text(), headers: res.headers };
}
