/**
 * The hand-written upstream WebSocket client (src/upstream/wsclient.ts) against real peers on
 * 127.0.0.1 port 0: a `ws` WebSocketServer for the well-behaved server, and a raw `node:http` server
 * that completes the upgrade and then writes frames byte by byte for the cases a real server would
 * never produce. The client's TCP socket is observed through the `net.client.socket` diagnostics
 * channel, so a test can wait for each read instead of sleeping (one byte per read, for the split tests).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { UpstreamWebSocket, WebSocketProtocolError, type UpstreamSocketOptions } from '../../src/upstream/wsclient.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OPTIONS: UpstreamSocketOptions = { maxPayload: 1 << 20, handshakeTimeout: 2000, perMessageDeflate: false, skipUTF8Validation: false, autoPong: true, followRedirects: false };

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

// -- peers ---------------------------------------------------------------------------------------

async function wsServer(): Promise<{ url: string; wss: WebSocketServer; next: () => Promise<{ ws: ServerSocket; req: IncomingMessage }> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => { resolve(); });
      }),
  );
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/stream?streams=a`;
  const next = async (): Promise<{ ws: ServerSocket; req: IncomingMessage }> => {
    const [ws, req] = (await once(wss, 'connection')) as [ServerSocket, IncomingMessage];
    return { ws, req };
  };
  return { url, wss, next };
}

function acceptOf(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A server whose upgrade is handled by the test: `upgrade` gets the request and the raw socket. */
async function rawServer(upgrade: (req: IncomingMessage, socket: Duplex) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => res.end());
  const sockets = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    sockets.add(socket);
    socket.on('error', () => {
      // The client may reset the socket (terminate, a refused handshake): nothing to report here.
    });
    upgrade(req, socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => { resolve(); });
      }),
  );
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

/** Complete the upgrade by hand (correct accept key unless told otherwise). */
function accept(req: IncomingMessage, socket: Duplex, extra = '', acceptKey?: string): void {
  const key = acceptKey ?? acceptOf(String(req.headers['sec-websocket-key']));
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${key}\r\n${extra}\r\n`);
}

/** An unmasked server frame. `first` is the whole first byte (FIN, RSV, opcode). */
function frame(first: number, payload: Buffer | string, mask = false): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const n = p.length;
  const h = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const out = Buffer.alloc(h + (mask ? 4 : 0) + n);
  out[0] = first;
  const m = mask ? 0x80 : 0;
  if (n < 126) out[1] = m | n;
  else if (n < 65_536) {
    out[1] = m | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = m | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  if (mask) {
    const key = Buffer.from([1, 2, 3, 4]);
    key.copy(out, h);
    for (let i = 0; i < n; i++) out[h + 4 + i] = (p[i] ?? 0) ^ (key[i & 3] ?? 0);
  } else p.copy(out, h);
  return out;
}

const text = (s: string | Buffer): Buffer => frame(0x81, s);

/** Client frames as the raw server reads them: checks they are masked, and unmasks them. */
function clientFrames(socket: Duplex): Array<{ opcode: number; payload: Buffer }> & { arrived: () => Promise<void> } {
  let wake: (() => void) | undefined;
  const out = Object.assign([] as Array<{ opcode: number; payload: Buffer }>, {
    arrived: () =>
      new Promise<void>((resolve) => {
        wake = resolve;
      }),
  });
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const b1 = buf[1] ?? 0;
      if ((b1 & 0x80) === 0) throw new Error('client frame not masked');
      let n = b1 & 0x7f;
      let h = 2;
      if (n === 126) {
        n = buf.readUInt16BE(2);
        h = 4;
      } else if (n === 127) {
        n = Number(buf.readBigUInt64BE(2));
        h = 10;
      }
      if (buf.length < h + 4 + n) return;
      const key = buf.subarray(h, h + 4);
      const payload = Buffer.alloc(n);
      for (let i = 0; i < n; i++) payload[i] = (buf[h + 4 + i] ?? 0) ^ (key[i & 3] ?? 0);
      out.push({ opcode: (buf[0] ?? 0) & 0x0f, payload });
      buf = buf.subarray(h + 4 + n);
      wake?.();
      wake = undefined;
    }
  });
  return out;
}

async function frameOf(frames: ReturnType<typeof clientFrames>, opcode: number): Promise<Buffer> {
  for (;;) {
    const f = frames.find((x) => x.opcode === opcode);
    if (f !== undefined) return f.payload;
    await frames.arrived();
  }
}

// -- the client under test -------------------------------------------------------------------------

interface Recorded {
  readonly ws: UpstreamWebSocket;
  readonly messages: Array<{ data: Buffer; binary: boolean }>;
  readonly pings: Buffer[];
  readonly errors: Error[];
  /** Resolves with the 'close' event's code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Resolves once `n` messages have arrived. */
  messagesAt(n: number): Promise<void>;
  /** The client's TCP socket (from the net.client.socket channel) once it exists. */
  socket(): Socket;
}

function client(url: string, options: UpstreamSocketOptions = OPTIONS): Recorded {
  let tcp: Socket | undefined;
  const channel = (m: unknown): void => {
    tcp ??= (m as { socket: Socket }).socket;
  };
  subscribe('net.client.socket', channel);
  const ws = new UpstreamWebSocket(url, options);
  // The socket is created synchronously inside http.request.
  unsubscribe('net.client.socket', channel);
  const messages: Array<{ data: Buffer; binary: boolean }> = [];
  const pings: Buffer[] = [];
  const errors: Error[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  ws.on('message', (data, binary) => {
    // A copy: a view of a read chunk is only promised until the handler returns.
    messages.push({ data: Buffer.from(data), binary });
    for (const w of waiters.splice(0)) if (messages.length >= w.n) w.resolve();
    else waiters.push(w);
  });
  ws.on('ping', (d) => pings.push(Buffer.from(d)));
  ws.on('error', (e) => errors.push(e));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code, reason) => { resolve({ code, reason: reason.toString() }); });
  });
  cleanups.push(() => {
    ws.terminate();
  });
  return {
    ws,
    messages,
    pings,
    errors,
    closed,
    messagesAt: (n) =>
      messages.length >= n
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            waiters.push({ n, resolve });
          }),
    socket: () => {
      if (tcp === undefined) throw new Error('no client socket seen');
      return tcp;
    },
  };
}

async function opened(c: Recorded): Promise<void> {
  if (c.ws.readyState === c.ws.OPEN) return;
  await once(c.ws, 'open');
}

/** Write `bytes` one per read of the client: each write waits until the client's socket has read the last. */
async function writeByteByByte(server: Duplex, clientSocket: Socket, bytes: Buffer): Promise<void> {
  for (let i = 0; i < bytes.length; i++) {
    const read = once(clientSocket, 'data');
    server.write(bytes.subarray(i, i + 1));
    await read;
  }
}

/** A raw server that accepts, then hands the test its socket. */
async function acceptingServer(): Promise<{ url: string; socket: () => Promise<Duplex> }> {
  let resolveSocket: ((s: Duplex) => void) | undefined;
  const sockets: Duplex[] = [];
  const { url } = await rawServer((req, socket) => {
    accept(req, socket);
    sockets.push(socket);
    resolveSocket?.(socket);
  });
  return {
    url,
    socket: () =>
      sockets.length > 0
        ? Promise.resolve(sockets[0] as Duplex)
        : new Promise<Duplex>((resolve) => {
            resolveSocket = resolve;
          }),
  };
}

// -- tests ----------------------------------------------------------------------------------------

describe('upstream WebSocket client: opening handshake', () => {
  it('opens against a ws server, offering no extension and no subprotocol, and exchanges messages', async () => {
    const srv = await wsServer();
    const c = client(srv.url);
    const [{ ws: peer, req }] = await Promise.all([srv.next(), opened(c)]);
    expect(c.ws.readyState).toBe(UpstreamWebSocket.OPEN);
    expect(req.url).toBe('/stream?streams=a');
    expect(req.headers['sec-websocket-extensions']).toBeUndefined();
    expect(req.headers['sec-websocket-protocol']).toBeUndefined();
    peer.send('{"stream":"a"}');
    await c.messagesAt(1);
    expect(c.messages[0]?.data.toString()).toBe('{"stream":"a"}');
    expect(c.messages[0]?.binary).toBe(false);
  });

  it('refuses a 101 whose Sec-WebSocket-Accept is not sha1(key + GUID): error, close 1006, never open', async () => {
    const { url } = await rawServer((req, socket) => {
      accept(req, socket, '', acceptOf('not the key we sent'));
    });
    const c = client(url);
    let open = false;
    c.ws.on('open', () => (open = true));
    const closed = await c.closed;
    expect(open).toBe(false);
    expect(closed.code).toBe(1006);
    expect(c.errors.map((e) => e.message)).toEqual(['Invalid Sec-WebSocket-Accept header']);
  });

  it.each([
    ['an extension', 'Sec-WebSocket-Extensions: permessage-deflate\r\n', 'Server sent a Sec-WebSocket-Extensions header but no extension was requested'],
    ['a subprotocol', 'Sec-WebSocket-Protocol: chat\r\n', 'Server sent a subprotocol but none was requested'],
  ])('refuses a server that negotiates %s we did not offer', async (_what, header, message) => {
    const { url } = await rawServer((req, socket) => {
      accept(req, socket, header);
    });
    const c = client(url);
    expect((await c.closed).code).toBe(1006);
    expect(c.errors.map((e) => e.message)).toEqual([message]);
    expect(c.ws.readyState).toBe(UpstreamWebSocket.CLOSED);
  });

  it('reports a non-101 answer as unexpected-response with its status and a readable Retry-After; the body can be drained', async () => {
    const srv = await rawServer((_req, socket) => {
      socket.end('HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 5\r\nConnection: close\r\n\r\nslow!');
    });
    const c = client(srv.url);
    const [, res] = (await once(c.ws, 'unexpected-response')) as [unknown, IncomingMessage];
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    res.resume();
    await once(res, 'end');
    c.ws.terminate();
    expect((await c.closed).code).toBe(1006);
    expect(c.ws.readyState).toBe(UpstreamWebSocket.CLOSED);
  });

  it('does not follow a redirect: a 302 is an unexpected-response', async () => {
    const srv = await rawServer((_req, socket) => {
      socket.end('HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n');
    });
    const c = client(srv.url);
    const [, res] = (await once(c.ws, 'unexpected-response')) as [unknown, IncomingMessage];
    expect(res.statusCode).toBe(302);
    c.ws.terminate();
    await c.closed;
  });

  it('gives up a handshake the server never answers after handshakeTimeout: error, then close 1006', async () => {
    let upgradeSeen: (() => void) | undefined;
    const seen = new Promise<void>((resolve) => {
      upgradeSeen = resolve;
    });
    const { url } = await rawServer(() => {
      upgradeSeen?.(); // and never answer
    });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const c = client(url, { ...OPTIONS, handshakeTimeout: 5000 });
    await seen;
    vi.advanceTimersByTime(4999);
    await new Promise((r) => setImmediate(r));
    expect(c.errors).toEqual([]);
    vi.advanceTimersByTime(1);
    const closed = await c.closed;
    expect(c.errors.map((e) => e.message)).toEqual(['Opening handshake has timed out']);
    expect(closed.code).toBe(1006);
  });

  it('opens wss:// over TLS, verifying the server certificate against the trusted CAs', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wsclient-tls-'));
    cleanups.push(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const certFile = path.join(dir, 'c.crt');
    const keyFile = path.join(dir, 'c.key');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=upstream', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(certFile, 'utf8');
    const server = createHttpsServer({ cert, key: readFileSync(keyFile, 'utf8') });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (peer: ServerSocket) => {
      peer.send('over tls');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const c of wss.clients) c.terminate();
          wss.close();
          server.close(() => { resolve(); });
        }),
    );
    const url = `wss://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const trusted = client(url, { ...OPTIONS, ca: cert });
    await trusted.messagesAt(1);
    expect(trusted.messages[0]?.data.toString()).toBe('over tls');

    // Without the CA the self-signed certificate is refused: no open, an error, close 1006.
    const untrusted = client(url);
    let open = false;
    untrusted.ws.on('open', () => (open = true));
    expect((await untrusted.closed).code).toBe(1006);
    expect(open).toBe(false);
    expect(untrusted.errors.map((e) => e.message).join()).toMatch(/self-signed|certificate/);
  });

  it('rejects a URL that is not ws(s)/http(s) synchronously', () => {
    expect(() => new UpstreamWebSocket('ftp://127.0.0.1/', OPTIONS)).toThrow(SyntaxError);
  });
});

describe('upstream WebSocket client: receiving', () => {
  it('delivers frames fed one byte per read intact (7-bit, 16-bit lengths, a ping, text and binary)', async () => {
    const srv = await acceptingServer();
    const c = client(srv.url);
    const socket = await srv.socket();
    await opened(c);
    const mid = Buffer.alloc(300, 0x61);
    const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
    const bytes = Buffer.concat([text('{"k":1}'), frame(0x89, 'hb'), frame(0x82, bin), text(mid), text('')]);
    await writeByteByByte(socket, c.socket(), bytes);
    await c.messagesAt(4);
    expect(c.messages.map((m) => m.data.toString('latin1'))).toEqual(['{"k":1}', bin.toString('latin1'), mid.toString(), '']);
    expect(c.messages.map((m) => m.binary)).toEqual([false, true, false, false]);
    expect(c.pings.map((p) => p.toString())).toEqual(['hb']);
    expect(c.errors).toEqual([]);
  });

  it("delivers frames that come in the same read as the 101 response, after 'open'", async () => {
    const { url } = await rawServer((req, socket) => {
      const key = acceptOf(String(req.headers['sec-websocket-key']));
      socket.write(
        Buffer.concat([
          Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${key}\r\n\r\n`),
          text('first'),
          text('second'),
        ]),
      );
    });
    const c = client(url);
    const order: string[] = [];
    c.ws.on('open', () => order.push('open'));
    c.ws.on('message', (d) => order.push(d.toString()));
    await c.messagesAt(2);
    expect(order).toEqual(['open', 'first', 'second']);
  });

  it('delivers every frame of a read that carries many, in order, each as a view of that read', async () => {
    const srv = await acceptingServer();
    const c = client(srv.url);
    const socket = await srv.socket();
    await opened(c);
    let reads = 0;
    c.socket().on('data', () => {
      reads++;
    });
    // A payload inside one read is handed over as a view of that read, not copied.
    const backing = new Set<ArrayBufferLike>();
    c.ws.on('message', (data) => {
      backing.add(data.buffer);
    });
    const frames: Buffer[] = [];
    for (let i = 0; i < 1000; i++) frames.push(text(`{"i":${i}}`));
    socket.write(Buffer.concat(frames));
    await c.messagesAt(1000);
    expect(c.messages.map((m) => m.data.toString())).toEqual(frames.map((_f, i) => `{"i":${i}}`));
    // ~10 KB in one write comes in far fewer reads than frames (on loopback, usually one).
    expect(reads).toBeLessThan(100);
    expect(backing.size).toBeLessThanOrEqual(reads);
  });

  it.each([125, 126, 65_535, 65_536, 300_000])('delivers a %i-byte message from a ws server intact (7-, 16- and 64-bit lengths)', async (size) => {
    const srv = await wsServer();
    const c = client(srv.url);
    const [{ ws: peer }] = await Promise.all([srv.next(), opened(c)]);
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 31) & 0xff;
    peer.send(payload);
    await c.messagesAt(1);
    expect(c.messages[0]?.binary).toBe(true);
    expect(c.messages[0]?.data.equals(payload)).toBe(true);
  });

  it('assembles a fragmented message around an interleaved ping, which is answered with its payload', async () => {
    const srv = await acceptingServer();
    const c = client(srv.url);
    const socket = await srv.socket();
    const fromClient = clientFrames(socket);
    await opened(c);
    const parts = [frame(0x01, 'hel'), frame(0x89, 'p1'), frame(0x00, 'lo '), frame(0x80, 'world'), text('next')];
    // Each fragment on its own read.
    for (const p of parts) {
      const read = once(c.socket(), 'data');
      socket.write(p);
      await read;
    }
    await c.messagesAt(2);
    expect(c.messages.map((m) => m.data.toString())).toEqual(['hello world', 'next']);
    expect(c.pings.map((p) => p.toString())).toEqual(['p1']);
    expect((await frameOf(fromClient, 0xa)).toString()).toBe('p1');
  });

  it('closes with 1009 past maxPayload, for one frame and for the sum of fragments', async () => {
    const srv = await wsServer();
    const c = client(srv.url, { ...OPTIONS, maxPayload: 1000 });
    const [{ ws: peer }] = await Promise.all([srv.next(), opened(c)]);
    const serverClose = once(peer, 'close') as Promise<[number, Buffer]>;
    peer.send(Buffer.alloc(1001));
    const [code] = await serverClose;
    expect(code).toBe(1009);
    expect(c.errors).toHaveLength(1);
    expect(c.errors[0]).toBeInstanceOf(WebSocketProtocolError);
    expect(c.errors[0]).toMatchObject({ code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', closeCode: 1009 });
    expect(c.messages).toEqual([]);
    await c.closed;

    const raw = await acceptingServer();
    const d = client(raw.url, { ...OPTIONS, maxPayload: 1000 });
    const socket = await raw.socket();
    const fromClient = clientFrames(socket);
    await opened(d);
    socket.write(Buffer.concat([frame(0x02, Buffer.alloc(600)), frame(0x80, Buffer.alloc(600))]));
    expect((await frameOf(fromClient, 0x8)).readUInt16BE(0)).toBe(1009);
    expect(d.messages).toEqual([]);
  });

  it.each([
    ['a masked server frame', frame(0x81, 'x', true), 'WS_ERR_UNEXPECTED_MASK'],
    ['RSV1 set (no extension negotiated)', frame(0xc1, 'x'), 'WS_ERR_UNEXPECTED_RSV_1'],
    ['RSV2 set', frame(0xa1, 'x'), 'WS_ERR_UNEXPECTED_RSV_2_3'],
    ['an unknown data opcode (3)', frame(0x83, 'x'), 'WS_ERR_INVALID_OPCODE'],
    ['an unknown control opcode (11)', frame(0x8b, 'x'), 'WS_ERR_INVALID_OPCODE'],
    ['a continuation with no message started', frame(0x80, 'x'), 'WS_ERR_INVALID_OPCODE'],
    ['a new message inside a fragmented one', Buffer.concat([frame(0x01, 'a'), frame(0x81, 'b')]), 'WS_ERR_INVALID_OPCODE'],
    ['a fragmented control frame', frame(0x09, 'x'), 'WS_ERR_EXPECTED_FIN'],
    ['an oversized control frame (126 bytes)', frame(0x89, Buffer.alloc(126)), 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH'],
    ['a close frame of one byte', frame(0x88, Buffer.from([3])), 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH'],
    ['a close frame with an invalid code (1005)', frame(0x88, Buffer.from([0x03, 0xed])), 'WS_ERR_INVALID_CLOSE_CODE'],
  ])('fails the connection with 1002 on %s, delivering nothing after it', async (_what, bytes, code) => {
    const srv = await acceptingServer();
    const c = client(srv.url);
    const socket = await srv.socket();
    const fromClient = clientFrames(socket);
    await opened(c);
    socket.write(Buffer.concat([text('before'), bytes, text('after')]));
    const close = await frameOf(fromClient, 0x8);
    expect(close.readUInt16BE(0)).toBe(1002);
    expect(c.errors.map((e) => (e instanceof WebSocketProtocolError ? e.code : e.message))).toEqual([code]);
    expect(c.messages.map((m) => m.data.toString())).toEqual(['before']);
    socket.end();
    expect((await c.closed).code).toBe(1006);
  });

  it('fails with 1007 on invalid UTF-8 in a text message unless skipUTF8Validation', async () => {
    const bad = frame(0x81, Buffer.from([0x7b, 0xff, 0x7d]));
    const srv = await acceptingServer();
    const c = client(srv.url);
    const socket = await srv.socket();
    const fromClient = clientFrames(socket);
    await opened(c);
    socket.write(bad);
    expect((await frameOf(fromClient, 0x8)).readUInt16BE(0)).toBe(1007);

    const raw = await acceptingServer();
    const d = client(raw.url, { ...OPTIONS, skipUTF8Validation: true });
    const s2 = await raw.socket();
    await opened(d);
    s2.write(bad);
    await d.messagesAt(1);
    expect(d.messages[0]?.data).toEqual(Buffer.from([0x7b, 0xff, 0x7d]));
  });

  it("answers a ws server's ping with a pong of the same payload", async () => {
    const srv = await wsServer();
    const c = client(srv.url);
    const [{ ws: peer }] = await Promise.all([srv.next(), opened(c)]);
    const pong = once(peer, 'pong') as Promise<[Buffer]>;
    peer.ping(Buffer.from('are you there'));
    const [payload] = await pong;
    expect(payload.toString()).toBe('are you there');
    expect(c.pings.map((p) => p.toString())).toEqual(['are you there']);
  });

  it("emits 'pong' for the server's answer to our ping", async () => {
    const srv = await wsServer();
    const c = client(srv.url);
    await Promise.all([srv.next(), opened(c)]);
    const pong = once(c.ws, 'pong');
    c.ws.ping();
    await pong;
    expect(c.errors).toEqual([]);
  });
});

describe('upstream WebSocket client: closing, flow control, sending', () => {
  it('completes a close we start: the server gets our code and reason, and we get its echo', async () => {
    const srv = await wsServer();
    const c = client(srv.url);
    const [{ ws: peer }] = await Promise.all([srv.next(), opened(c)]);
    const serverClose = once(peer, 'close') as Promise<[number, Buffer]>;
    c.ws.close(4001, 'rotation');
    expect(c.ws.readyState).toBe(UpstreamWebSocket.CLOSING);
    const [code, reason] = await serverClose;
    expect([code, reason.toString()]).toEqual([4001, 'rotation']);
    expect(await c.closed).toEqual({ code: 4001, reason: 'rotation' });
    expect(c.ws.readyState).toBe(UpstreamWebSocket.CLOSED);
  });

  it('completes a close the server starts: we echo its code and report it', async () => {
    const srv = await wsServer();
    const c = client(srv.url);
    const [{ ws: peer }] = await Promise.all([srv.next(), opened(c)]);
    const serverClose = once(peer, 'close') as Promise<[number, Buffer]>;
    peer.close(1008, 'too many requests');
    expect(await c.closed).toEqual({ code: 1008, reason: 'too many requests' });
    const [code] = await serverClose;
    expect(code).toBe(1008);
    expect(c.errors).toEqual([]);
  });

  it('reports an empty close frame as 1005 and echoes an empty one', async () => {
    const srv = await acceptingServer();
    const c = client(srv.url);
    const socket = await srv.socket();
    const fromClient = clientFrames(socket);
    await opened(c);
    socket.write(frame(0x88, ''));
    expect((await frameOf(fromClient, 0x8)).length).toBe(0);
    socket.end();
    expect((await c.closed).code).toBe(1005);
  });

  it('terminate() drops the connection at once: 1006 on both sides, no close frame', async () => {
    const srv = await wsServer();
    const c = client(srv.url);
    const [{ ws: peer }] = await Promise.all([srv.next(), opened(c)]);
    const serverClose = once(peer, 'close') as Promise<[number, Buffer]>;
    c.ws.terminate();
    expect((await c.closed).code).toBe(1006);
    expect((await serverClose)[0]).toBe(1006);
  });

  it('reports a server that drops the TCP connection without a close frame as 1006, with no error', async () => {
    const srv = await acceptingServer();
    const c = client(srv.url);
    const socket = await srv.socket();
    await opened(c);
    socket.destroy();
    expect((await c.closed).code).toBe(1006);
    expect(c.errors).toEqual([]);
  });

  /** A client that pauses itself on its first message, after the server sends '1', '2', '3' in one write (`end`: and half-closes). */
  async function pausedAfterFirst(end: boolean): Promise<{ c: Recorded; socket: Duplex }> {
    const srv = await acceptingServer();
    const c = client(srv.url);
    const socket = await srv.socket();
    await opened(c);
    c.ws.on('message', () => {
      if (c.messages.length === 1) c.ws.pause();
    });
    const read = once(c.socket(), 'data');
    const frames = Buffer.concat([text('1'), text('2'), text('3')]);
    if (end) socket.end(frames);
    else socket.write(frames);
    await read;
    // The whole read is in; the frames after the pause wait.
    await new Promise((r) => setImmediate(r));
    return { c, socket };
  }

  it('pause() stops delivery, even of frames already read, and resume() delivers them in order', async () => {
    const { c, socket } = await pausedAfterFirst(false);
    expect(c.messages.map((m) => m.data.toString())).toEqual(['1']);
    // And nothing new is read while paused.
    socket.write(text('4'));
    await new Promise((r) => setTimeout(r, 50));
    expect(c.messages.map((m) => m.data.toString())).toEqual(['1']);
    expect(c.socket().isPaused()).toBe(true);
    c.ws.resume();
    await c.messagesAt(4);
    expect(c.messages.map((m) => m.data.toString())).toEqual(['1', '2', '3', '4']);
  });

  it('delivers the frames a pause held back even when the server ends the connection meanwhile', async () => {
    const { c } = await pausedAfterFirst(true);
    expect(c.messages.map((m) => m.data.toString())).toEqual(['1']);
    c.ws.resume();
    expect((await c.closed).code).toBe(1006);
    expect(c.messages.map((m) => m.data.toString())).toEqual(['1', '2', '3']);
  });

  it('sends text and binary messages a ws server reads unmasked and intact, of every length form', async () => {
    const srv = await wsServer();
    const c = client(srv.url);
    const [{ ws: peer }] = await Promise.all([srv.next(), opened(c)]);
    const got: Array<{ data: Buffer; binary: boolean }> = [];
    peer.on('message', (data: Buffer, binary: boolean) => got.push({ data, binary }));
    const long = 'x'.repeat(70_000);
    const mid = 'é'.repeat(200);
    const bin = Buffer.from([0, 1, 2, 0x80, 0xff]);
    c.ws.send('{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"],"id":1}');
    c.ws.send(bin);
    c.ws.send(mid);
    c.ws.send(long);
    await vi.waitFor(() => {
      expect(got).toHaveLength(4);
    });
    expect(got.map((g) => g.binary)).toEqual([false, true, false, false]);
    expect(got[0]?.data.toString()).toBe('{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"],"id":1}');
    expect(got[1]?.data.equals(bin)).toBe(true);
    expect(got[2]?.data.toString()).toBe(mid);
    expect(got[3]?.data.toString()).toBe(long);
  });

  it('refuses to send while connecting, and drops sends once closing', async () => {
    const srv = await wsServer();
    const c = client(srv.url);
    expect(() => { c.ws.send('x'); }).toThrow(/CONNECTING/);
    const [{ ws: peer }] = await Promise.all([srv.next(), opened(c)]);
    const got: Buffer[] = [];
    peer.on('message', (d: Buffer) => got.push(d));
    c.ws.close(1000, 'bye');
    c.ws.send('late');
    await c.closed;
    expect(got).toEqual([]);
  });
});
