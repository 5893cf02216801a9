/**
 * The flood source, in its own process (forked by bench/run.ts): a Binance-like combined-stream
 * WebSocket endpoint that sends realistic kline frames as fast as each socket drains, or at a fixed
 * total rate.
 *
 * - `/stream?streams=a/b` (what the pool and the floor use) and bare `/stream` + SUBSCRIBE (what the
 *   `binance` npm client does); control requests get `{"result":null,"id":N}`; pings are answered by
 *   ws (nothing special, like Binance).
 * - Frames: combined envelopes `{"stream":…,"data":<kline event>}` built from the simulator's ground
 *   truth, one template per stream with the numbers spliced in, framed by hand and written straight to
 *   the TCP socket in ~64 KiB chunks (permessage-deflate is off, so ws's Sender never queues and
 *   whole frames cannot interleave with its control replies). Backpressure: write until
 *   `socket.write` returns false, then wait for 'drain'. No sleeps.
 * - Per stream: `closedEvery - 1` open updates with increasing E, then the closed candle, then the
 *   next open time: closed open times are consecutive, never skipped (a skip would be a gap the
 *   pipeline recovers over REST).
 * - REST: a BinanceSimulator in this process provides /api/v3/klines for the config (not expected
 *   to be called, since nothing is skipped).
 *
 * IPC: → { type: 'ready', wsUrl, restUrl }; ← { type: 'rate', rate } (0 = as fast as possible) → { type: 'rate' };
 *      ← { type: 'stats' } → { type: 'stats', frames, cpuUs, connections }
 */
import { createServer, type IncomingMessage } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { BinanceSimulator } from '../src/venues/binance/simulator/server.ts';
import { klineAt, klineEventJson, openKlineAt } from '../src/venues/binance/simulator/klines.ts';
import { nominalMs } from '../src/core/intervals.ts';

export type FloodMessage =
  | { type: 'ready'; wsUrl: string; restUrl: string }
  | { type: 'rate' }
  | { type: 'stats'; frames: number; cpuUs: number; connections: number };

const CLOSED_EVERY = 10;
const CHUNK_BYTES = 64 * 1024;
/** A fixed epoch so runs are comparable; open times march forward from here faster than real time. */
const T0 = Date.UTC(2026, 0, 1);
const SENTINEL = { t: '1111111111111', T: '2222222222222', E: '3333333333333' };

/** A stream's frame split around its E, t and T values, in order of appearance. */
interface Template {
  parts: string[];
  /** Which value goes after parts[i]: 'E' | 't' | 'T'. */
  slots: ('E' | 't' | 'T')[];
}

interface StreamState {
  open: Template;
  closed: Template;
  stepMs: number;
  t: number;
  n: number;
}

interface Conn {
  ws: WebSocket;
  socket: Socket;
  streams: StreamState[];
  cursor: number;
  waiting: boolean;
  closed: boolean;
}

function template(name: string, json: string): Template {
  const text = `{"stream":"${name}","data":${json}}`;
  const parts: string[] = [];
  const slots: ('E' | 't' | 'T')[] = [];
  const re = /1111111111111|2222222222222|3333333333333/g;
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    parts.push(text.slice(last, m.index));
    slots.push(m[0] === SENTINEL.t ? 't' : m[0] === SENTINEL.T ? 'T' : 'E');
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return { parts, slots };
}

const stateCache = new Map<string, { open: Template; closed: Template; stepMs: number }>();
function streamState(name: string): StreamState | undefined {
  const m = /^([a-z0-9]+)@kline_([0-9]+[smhdwM])$/.exec(name);
  if (m === null) return undefined;
  let cached = stateCache.get(name);
  if (cached === undefined) {
    const [, symbol, interval] = m as unknown as [string, string, string];
    const open = { ...openKlineAt(symbol, interval, T0, 0.5), t: Number(SENTINEL.t), T: Number(SENTINEL.T) };
    const closed = { ...klineAt(symbol, interval, T0), t: Number(SENTINEL.t), T: Number(SENTINEL.T) };
    cached = {
      open: template(name, klineEventJson(open, Number(SENTINEL.E))),
      closed: template(name, klineEventJson(closed, Number(SENTINEL.E))),
      stepMs: nominalMs(interval),
    };
    stateCache.set(name, cached);
  }
  return { ...cached, t: T0, n: 0 };
}

let eventTime = T0;
let framesSent = 0;

/** Build one chunk of whole frames (at most `maxFrames`); every frame is ASCII, so chars = bytes. */
function buildChunk(conn: Conn, maxFrames: number): Buffer | undefined {
  const streams = conn.streams;
  if (streams.length === 0) return undefined;
  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let off = 0;
  let frames = 0;
  while (frames < maxFrames) {
    const st = streams[conn.cursor]!;
    const isClosed = st.n % CLOSED_EVERY === CLOSED_EVERY - 1;
    const tpl = isClosed ? st.closed : st.open;
    const E = ++eventTime;
    let s = tpl.parts[0]!;
    for (let i = 0; i < tpl.slots.length; i++) {
      const slot = tpl.slots[i];
      s += String(slot === 'E' ? E : slot === 't' ? st.t : st.t + st.stepMs - 1) + tpl.parts[i + 1]!;
    }
    const len = s.length;
    const header = len < 126 ? 2 : 4;
    if (off + header + len > CHUNK_BYTES) break;
    buf[off] = 0x81;
    if (len < 126) buf[off + 1] = len;
    else {
      buf[off + 1] = 126;
      buf.writeUInt16BE(len, off + 2);
    }
    off += header;
    off += buf.write(s, off, 'latin1');
    frames++;
    st.n++;
    if (isClosed) st.t += st.stepMs;
    conn.cursor = conn.cursor + 1 === streams.length ? 0 : conn.cursor + 1;
  }
  framesSent += frames;
  return off === 0 ? undefined : buf.subarray(0, off);
}

const conns = new Set<Conn>();
let rate = 0;
let rateTimer: NodeJS.Timeout | undefined;

/** As fast as the socket drains. */
function pump(conn: Conn): void {
  conn.waiting = false;
  while (!conn.closed && rate === 0) {
    const chunk = buildChunk(conn, Number.MAX_SAFE_INTEGER);
    if (chunk === undefined) return;
    if (!conn.socket.write(chunk)) {
      conn.waiting = true;
      conn.socket.once('drain', () => {
        pump(conn);
      });
      return;
    }
  }
}

/** Fixed total rate across connections: every millisecond, send what is due (bursts of ~rate/1000). */
function startRate(): void {
  if (rateTimer !== undefined) clearInterval(rateTimer);
  rateTimer = undefined;
  if (rate === 0) {
    for (const c of conns) if (!c.waiting) pump(c);
    return;
  }
  const started = performance.now();
  let sent = 0;
  rateTimer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) * rate) / 1000) - sent;
    if (due <= 0 || conns.size === 0) return;
    const per = Math.max(1, Math.ceil(due / conns.size));
    for (const c of conns) {
      if (c.closed || c.streams.length === 0) continue;
      // A consumer that cannot keep up does not get an unbounded backlog in this process.
      if (c.socket.writableLength > 8 * CHUNK_BYTES) continue;
      let left = per;
      while (left > 0) {
        const before = framesSent;
        const chunk = buildChunk(c, left);
        if (chunk === undefined) break;
        c.socket.write(chunk);
        left -= framesSent - before;
      }
    }
    sent += due;
  }, 1);
}

function onControl(conn: Conn, data: RawData): void {
  let msg: { method?: unknown; params?: unknown; id?: unknown };
  try {
    msg = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8')) as typeof msg;
  } catch {
    // Not JSON: Binance answers with an error code; nothing in the bench sends this.
    return;
  }
  if (msg.method === 'SUBSCRIBE' && Array.isArray(msg.params)) {
    for (const p of msg.params) {
      const st = typeof p === 'string' ? streamState(p) : undefined;
      if (st !== undefined) conn.streams.push(st);
    }
    conn.ws.send(JSON.stringify({ result: null, id: msg.id ?? null }));
    if (rate === 0 && !conn.waiting) setImmediate(pump, conn);
  } else if (msg.method === 'LIST_SUBSCRIPTIONS') {
    conn.ws.send(JSON.stringify({ result: [], id: msg.id ?? null }));
  } else {
    conn.ws.send(JSON.stringify({ result: null, id: msg.id ?? null }));
  }
}

const sim = await BinanceSimulator.start({ host: '127.0.0.1', port: 0, restWeightPerMinute: 1_000_000 });
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1 << 20 });
const server = createServer((_req, res) => {
  res.writeHead(426).end();
});
server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (!(socket instanceof Socket) || (url.pathname !== '/stream' && url.pathname !== '/stream/')) {
    socket.destroy();
    return;
  }
  const names = (url.searchParams.get('streams') ?? '').split('/').filter((s) => s.length > 0);
  wss.handleUpgrade(req, socket, head, (ws) => {
    const streams: StreamState[] = [];
    for (const n of names) {
      const st = streamState(n);
      if (st !== undefined) streams.push(st);
    }
    const conn: Conn = { ws, socket, streams, cursor: 0, waiting: false, closed: false };
    socket.setNoDelay(true);
    conns.add(conn);
    ws.on('message', (data: RawData) => {
      onControl(conn, data);
    });
    ws.on('close', () => {
      conn.closed = true;
      conns.delete(conn);
    });
    ws.on('error', () => {
      // The consumer went away mid-write (the bench stops consumers abruptly); close follows.
    });
    if (rate === 0) setImmediate(pump, conn);
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;

const cpuStart = process.cpuUsage();
process.on('message', (raw: unknown) => {
  const msg = raw as { type: string; rate?: number };
  if (msg.type === 'rate') {
    rate = msg.rate ?? 0;
    startRate();
    process.send?.({ type: 'rate' } satisfies FloodMessage);
  } else if (msg.type === 'stats') {
    const cpu = process.cpuUsage(cpuStart);
    process.send?.({ type: 'stats', frames: framesSent, cpuUs: cpu.user + cpu.system, connections: conns.size } satisfies FloodMessage);
  } else if (msg.type === 'stop') {
    if (rateTimer !== undefined) clearInterval(rateTimer);
    for (const c of conns) c.ws.terminate();
    server.close();
    void sim.close().then(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', wsUrl: `ws://127.0.0.1:${port}`, restUrl: sim.restUrl } satisfies FloodMessage);
