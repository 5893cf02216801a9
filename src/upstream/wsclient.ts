/**
 * A minimal RFC 6455 client for the upstream socket, the one place where the hot path needs something
 * other than `ws` (issue 18; ARCHITECTURE.md, Performance). ws's receiver makes two FastBuffers per
 * `consume()` and calls it three times per typical frame (header, extended length, payload), plus a
 * fragments array: ~550 B of garbage per ~360 B kline frame at 300–500 k frames/s, about half of the
 * young generation's allocation. Here frame headers are read straight from the socket's read chunks, and
 * a payload inside one chunk is handed over as one `subarray` view: the only allocation per frame. A
 * payload straddling chunks is assembled by one copy into a Buffer of its size.
 *
 * Venue-agnostic, and exactly the subset of ws's client API that connection.ts uses (`UpstreamSocket`,
 * which ws's `WebSocket` satisfies too, so tests keep injecting ws through `wsFactory`): events 'open',
 * 'message', 'ping', 'pong', 'close', 'error', 'unexpected-response'; `send`, `ping`, `close`,
 * `terminate`, `pause`, `resume`, `readyState`. No extensions are offered (no permessage-deflate) and
 * no subprotocol; a server that negotiates either is refused. Behaviour and error codes follow ws 8
 * (lib/websocket.js, lib/receiver.js): a protocol error emits 'error' with a `WS_ERR_*` code, sends a
 * close frame with 1002 (1009 past maxPayload, 1007 for invalid UTF-8) and ends the socket; 'close'
 * then reports the peer's close code, or 1006 when no close frame was received.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import { isIP, type Socket } from 'node:net';
import type * as NodeHttp from 'node:http';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import type * as NodeHttps from 'node:https';
import type { Duplex } from 'node:stream';

// node:http/https through createRequire, as relay/server.ts does: an ESM `import` of the builtin reads
// every export, and its lazy WebSocket getters load Node's bundled undici (ARCHITECTURE.md, Memory).
const require = createRequire(import.meta.url);
const http = require('node:http') as typeof NodeHttp;
const https = require('node:https') as typeof NodeHttps;

/** What connection.ts needs from an upstream socket; ws's `WebSocket` and `UpstreamWebSocket` both are one. */
export interface UpstreamSocket {
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
  readonly readyState: 0 | 1 | 2 | 3;
  send(data: string | Buffer): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  on(event: 'open', listener: () => void): this;
  /** Always a Buffer: ws's WebSocket with its default binaryType 'nodebuffer' hands over one too (fragments concatenated). */
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'unexpected-response', listener: (req: ClientRequest, res: IncomingMessage) => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
}

/** The options connection.ts passes (the same names and meaning as ws's ClientOptions). */
export interface UpstreamSocketOptions {
  /** Largest message accepted, in bytes (0 = no limit); past it the socket is closed with 1009. */
  readonly maxPayload?: number | undefined;
  /** The opening handshake must complete within this many ms, or 'error' and 'close' are emitted. */
  readonly handshakeTimeout?: number | undefined;
  /** Extensions are never offered. */
  readonly perMessageDeflate?: false | undefined;
  /** Text messages and close reasons are not checked for valid UTF-8 (the frame parser does it). */
  readonly skipUTF8Validation?: boolean | undefined;
  /** Answer pings with a pong of the same payload (default true, as ws). */
  readonly autoPong?: boolean | undefined;
  /** Redirects are never followed: a 3xx is an 'unexpected-response'. */
  readonly followRedirects?: false | undefined;
  /** wss: trusted CA certificates instead of Node's bundled ones (as ws's `ca`); unset in production. */
  readonly ca?: string | Buffer | undefined;
}

/** A protocol violation by the server, or a handshake the client refuses; `code` is ws's. */
export class WebSocketProtocolError extends Error {
  readonly code: string;
  /** The close code sent to the server (1002, 1007, 1009). */
  readonly closeCode: number;
  constructor(code: string, closeCode: number, message: string) {
    super(message);
    this.name = 'WebSocketProtocolError';
    this.code = code;
    this.closeCode = closeCode;
  }
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
type ReadyState = typeof CONNECTING | typeof OPEN | typeof CLOSING | typeof CLOSED;

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** RFC 6455 §1.3: the server's accept key is base64(sha1(key + this GUID)). */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** ws's default closeTimeout: a closing handshake the server never completes ends with a destroy. */
const CLOSE_TIMEOUT_MS = 30_000;
/** Masks drawn per refill of the random pool (4 bytes each). */
const MASKS_PER_REFILL = 64;
const EMPTY = Buffer.alloc(0);

/** Receiving: reading frames, or stopped (a close frame received, a protocol error, terminate). */
const RX_OPEN = 0;
const RX_STOPPED = 1;

function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** The events and their arguments (ws's names and order). */
interface UpstreamSocketEvents {
  open: [];
  message: [data: Buffer, isBinary: boolean];
  ping: [data: Buffer];
  pong: [data: Buffer];
  close: [code: number, reason: Buffer];
  error: [err: Error];
  'unexpected-response': [req: ClientRequest, res: IncomingMessage];
}

/**
 * One client frame in one buffer (RFC 6455 §5.3: a client masks every frame): FIN, `opcode`, the four
 * mask bytes `mask[maskAt..maskAt+4)`, then the masked `prefixCode` (a close frame's code) when given and
 * `payload`. Also what the bench's relay clients send with (bench/relay-client.ts).
 */
export function maskedFrame(opcode: number, payload: string | Buffer, mask: Uint8Array, maskAt = 0, prefixCode?: number): Buffer {
  const body = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const n = prefixCode === undefined ? body : body + 2;
  const h = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(h + 4 + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  out.set(mask.subarray(maskAt, maskAt + 4), h);
  let at = h + 4;
  if (prefixCode !== undefined) {
    out.writeUInt16BE(prefixCode, at);
    at += 2;
  }
  if (typeof payload === 'string') out.write(payload, at, 'utf8');
  else payload.copy(out, at);
  for (let i = 0; i < n; i++) out[h + 4 + i] = (out[h + 4 + i] ?? 0) ^ (out[h + (i & 3)] ?? 0);
  return out;
}

export class UpstreamWebSocket extends EventEmitter<UpstreamSocketEvents> implements UpstreamSocket {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  readonly CONNECTING = CONNECTING;
  readonly OPEN = OPEN;
  readonly CLOSING = CLOSING;
  readonly CLOSED = CLOSED;

  readonly #maxPayload: number;
  readonly #skipUtf8: boolean;
  readonly #autoPong: boolean;
  readonly #key: string;

  #readyState: ReadyState = CONNECTING;
  #req: ClientRequest | undefined;
  #socket: Duplex | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #closeTimer: NodeJS.Timeout | undefined;
  #errorEmitted = false;
  #closeEmitted = false;
  #closeFrameSent = false;
  #closeFrameReceived = false;
  #closeCode = 1006;
  #closeReason: Buffer = EMPTY;
  #paused = false;

  // -- receiver state (no object per frame: the current frame's header lives in these fields) --
  #rx = RX_OPEN;
  #opcode = 0;
  #fin = false;
  #payloadLength = 0;
  /** Bytes of a header split across reads (at most 14: 2 + 8 of length; servers never mask). */
  readonly #head = Buffer.allocUnsafe(14);
  #headHave = 0;
  /** A payload straddling reads, being copied into a Buffer of its size. */
  #assembly: Buffer | undefined;
  #assemblyAt = 0;
  /** The rest of a read chunk not yet parsed when pause() stopped delivery. */
  #leftover: Buffer | undefined;
  #leftoverScheduled = false;
  /** A fragmented message: its opcode (0 = none in progress), its fragments, the bytes so far. */
  #fragOpcode = 0;
  #fragments: Buffer[] = [];
  #messageLength = 0;

  /** Masks of sent frames come from this pool, refilled by randomFillSync (as ws does). */
  readonly #random = Buffer.allocUnsafe(4 * MASKS_PER_REFILL);
  #randomAt = 4 * MASKS_PER_REFILL;

  readonly #onData = (chunk: Buffer): void => {
    this.#receive(chunk);
  };
  readonly #onEnd = (): void => {
    // The server half-closed: no close frame is coming (1006), end our side too (ws socketOnEnd).
    // What was already read (a paused read's rest) is still delivered, as ws's receiver.end() does.
    this.#readyState = CLOSING;
    this.#socket?.end();
  };
  readonly #onSocketError = (): void => {
    // ws does not surface socket errors after the handshake (socketOnError): the socket is destroyed
    // and 'close' reports 1006; connection.ts sees that as the socket lost.
    this.#readyState = CLOSING;
    this.#rx = RX_STOPPED;
    this.#socket?.destroy();
  };
  readonly #onSocketClose = (): void => {
    if (this.#leftover !== undefined && !this.#paused) this.#drainLeftover();
    this.#rx = RX_STOPPED;
    clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    this.#emitClose();
  };
  readonly #drainLeftover = (): void => {
    this.#leftoverScheduled = false;
    const rest = this.#leftover;
    if (rest === undefined || this.#paused) return;
    this.#leftover = undefined;
    this.#receive(rest);
  };

  constructor(address: string, options: UpstreamSocketOptions = {}) {
    super();
    this.#maxPayload = options.maxPayload ?? 100 * 1024 * 1024;
    this.#skipUtf8 = options.skipUTF8Validation ?? false;
    this.#autoPong = options.autoPong ?? true;
    const url = new URL(address);
    let secure: boolean;
    if (url.protocol === 'ws:' || url.protocol === 'http:') secure = false;
    else if (url.protocol === 'wss:' || url.protocol === 'https:') secure = true;
    else throw new SyntaxError(`The URL's protocol must be one of "ws:", "wss:", "http:", or "https:"; got ${url.protocol}`);
    if (url.hash !== '') throw new SyntaxError('The URL contains a fragment identifier');
    this.#key = randomBytes(16).toString('base64');
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const request: RequestOptions & { servername?: string; ca?: string | Buffer } = {
      host,
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      // No pooling: the socket becomes the WebSocket.
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': this.#key,
        // No Sec-WebSocket-Extensions and no Sec-WebSocket-Protocol: nothing is offered.
      },
    };
    if (url.username !== '' || url.password !== '') request.auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    // SNI: the host name, never an IP literal (RFC 6066 §3).
    if (secure && isIP(host) === 0) request.servername = host;
    if (secure && options.ca !== undefined) request.ca = options.ca;
    const req = secure ? https.request(request) : http.request(request);
    this.#req = req;
    const timeout = options.handshakeTimeout ?? 0;
    if (timeout > 0) {
      this.#handshakeTimer = setTimeout(() => {
        this.#handshakeTimer = undefined;
        this.#abortHandshake('Opening handshake has timed out');
      }, timeout);
    }
    req.on('error', (err: Error) => {
      if (this.#req !== req) return; // aborted by us: already reported
      this.#req = undefined;
      clearTimeout(this.#handshakeTimer);
      this.#readyState = CLOSING;
      this.#emitError(err);
      this.#emitClose();
    });
    req.on('response', (res: IncomingMessage) => {
      if (this.#req !== req) return;
      clearTimeout(this.#handshakeTimer);
      // ws: a listener owns the refused upgrade (it reads the status and headers, then terminates).
      if (!this.emit('unexpected-response', req, res)) this.#abortHandshake(`Unexpected server response: ${res.statusCode ?? 0}`);
    });
    req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.#req !== req) {
        socket.destroy();
        return;
      }
      this.#req = undefined;
      clearTimeout(this.#handshakeTimer);
      this.#handshakeTimer = undefined;
      this.#upgraded(res, socket, head);
    });
    req.end();
  }

  get readyState(): ReadyState {
    return this.#readyState;
  }

  // -- opening handshake -----------------------------------------------------------------------

  #upgraded(res: IncomingMessage, socket: Socket, head: Buffer): void {
    const refuse = (message: string): void => {
      this.#readyState = CLOSING;
      socket.destroy();
      this.#emitError(new Error(message));
      this.#emitClose();
    };
    if (this.#readyState !== CONNECTING) {
      socket.destroy();
      return;
    }
    const upgrade = res.headers.upgrade;
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
      refuse('Invalid Upgrade header');
      return;
    }
    const expected = createHash('sha1').update(this.#key + GUID).digest('base64');
    if (res.headers['sec-websocket-accept'] !== expected) {
      refuse('Invalid Sec-WebSocket-Accept header');
      return;
    }
    if (res.headers['sec-websocket-protocol'] !== undefined) {
      refuse('Server sent a subprotocol but none was requested');
      return;
    }
    if (res.headers['sec-websocket-extensions'] !== undefined) {
      refuse('Server sent a Sec-WebSocket-Extensions header but no extension was requested');
      return;
    }
    this.#socket = socket;
    socket.setTimeout(0);
    socket.setNoDelay(true);
    // Frames that came with the 101 response are read like any other, after 'open' (as ws: unshift).
    if (head.length > 0) socket.unshift(head);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onSocketError);
    socket.on('close', this.#onSocketClose);
    this.#readyState = OPEN;
    this.emit('open');
  }

  /** ws abortHandshake: the request is dropped, then 'error' and 'close' (1006) on the next tick. */
  #abortHandshake(message: string): void {
    const req = this.#req;
    this.#req = undefined;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    this.#readyState = CLOSING;
    if (req !== undefined) req.destroy();
    const err = new Error(message);
    process.nextTick(() => {
      this.#emitError(err);
      this.#emitClose();
    });
  }

  #emitError(err: Error): void {
    if (this.#errorEmitted) return;
    this.#errorEmitted = true;
    this.emit('error', err);
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.#readyState = CLOSED;
    this.emit('close', this.#closeCode, this.#closeReason);
  }

  // -- receiving (the hot path) ----------------------------------------------------------------

  /** Parse every frame of a read chunk. Allocates nothing per frame but a payload's view. */
  #receive(chunk: Buffer): void {
    let buf = chunk;
    if (this.#leftover !== undefined) {
      // Data after a pause (the socket had a read in flight): keep the order.
      buf = Buffer.concat([this.#leftover, chunk]);
      this.#leftover = undefined;
    }
    const len = buf.length;
    let off = 0;
    while (off < len) {
      if (this.#rx !== RX_OPEN) return;
      if (this.#paused) {
        this.#leftover = off === 0 ? buf : buf.subarray(off);
        return;
      }
      const assembly = this.#assembly;
      if (assembly !== undefined) {
        const n = Math.min(assembly.length - this.#assemblyAt, len - off);
        buf.copy(assembly, this.#assemblyAt, off, off + n);
        this.#assemblyAt += n;
        off += n;
        if (this.#assemblyAt === assembly.length) {
          this.#assembly = undefined;
          this.#frame(assembly);
        }
        continue;
      }
      if (this.#headHave > 0) {
        off = this.#fillHead(buf, off, len);
        if (off < 0 || this.#headHave > 0) return;
      } else {
        const h = this.#header(buf, off, len);
        if (h < 0) return;
        if (h === 0) {
          buf.copy(this.#head, 0, off, len);
          this.#headHave = len - off;
          return;
        }
        off += h;
      }
      const plen = this.#payloadLength;
      if (plen === 0) {
        this.#frame(EMPTY);
      } else if (len - off >= plen) {
        const payload = buf.subarray(off, off + plen);
        off += plen;
        this.#frame(payload);
      } else {
        // The one copy of a frame straddling reads.
        const into = Buffer.allocUnsafe(plen);
        buf.copy(into, 0, off, len);
        this.#assembly = into;
        this.#assemblyAt = len - off;
        off = len;
      }
    }
  }

  /**
   * Complete a header split across reads from `buf` at `off`; returns the new offset, or -1 on a
   * protocol error. On return `#headHave` is 0 when the header is complete (and parsed), else more
   * bytes are needed.
   */
  #fillHead(buf: Buffer, off: number, len: number): number {
    const head = this.#head;
    while (off < len) {
      head[this.#headHave++] = buf[off++] ?? 0;
      if (this.#headHave < 2) continue;
      const b1 = (head[1] ?? 0) & 0x7f;
      const need = b1 === 126 ? 4 : b1 === 127 ? 10 : 2;
      if (this.#headHave < need) continue;
      this.#headHave = 0;
      return this.#header(head, 0, need) < 0 ? -1 : off;
    }
    return off;
  }

  /**
   * Read one frame header at `off`: its length in bytes, 0 if `end - off` bytes are not enough, -1 on a
   * protocol error (already failed). Checks in ws's order (receiver.js getInfo).
   */
  #header(buf: Buffer, off: number, end: number): number {
    const avail = end - off;
    if (avail < 2) return 0;
    const b0 = buf[off] ?? 0;
    const b1 = buf[off + 1] ?? 0;
    if ((b0 & 0x40) !== 0) return this.#fail('WS_ERR_UNEXPECTED_RSV_1', 1002, 'RSV1 must be clear');
    if ((b0 & 0x20) !== 0) return this.#fail('WS_ERR_UNEXPECTED_RSV_2_3', 1002, 'RSV2 must be clear');
    if ((b0 & 0x10) !== 0) return this.#fail('WS_ERR_UNEXPECTED_RSV_2_3', 1002, 'RSV3 must be clear');
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    let plen = b1 & 0x7f;
    if (opcode === OP_CONTINUATION) {
      if (this.#fragOpcode === 0) return this.#fail('WS_ERR_INVALID_OPCODE', 1002, 'invalid opcode 0');
    } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.#fragOpcode !== 0) return this.#fail('WS_ERR_INVALID_OPCODE', 1002, `invalid opcode ${opcode}`);
    } else if (opcode === OP_CLOSE || opcode === OP_PING || opcode === OP_PONG) {
      if (!fin) return this.#fail('WS_ERR_EXPECTED_FIN', 1002, 'FIN must be set');
      if (plen > 125) return this.#fail('WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 1002, `invalid payload length ${plen}`);
    } else {
      return this.#fail('WS_ERR_INVALID_OPCODE', 1002, `invalid opcode ${opcode}`);
    }
    // RFC 6455 §5.1: a server must not mask the frames it sends.
    if ((b1 & 0x80) !== 0) return this.#fail('WS_ERR_UNEXPECTED_MASK', 1002, 'MASK must be clear');
    let h = 2;
    if (plen === 126) {
      if (avail < 4) return 0;
      plen = buf.readUInt16BE(off + 2);
      h = 4;
    } else if (plen === 127) {
      if (avail < 10) return 0;
      const hi = buf.readUInt32BE(off + 2);
      // Beyond 2^53 - 1 a length is not a safe integer (ws: the same limit and code).
      if (hi > 0x1fffff) return this.#fail('WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', 1009, 'Unsupported WebSocket frame: payload length > 2^53 - 1');
      plen = hi * 0x1_0000_0000 + buf.readUInt32BE(off + 6);
      h = 10;
    }
    if (opcode < OP_CLOSE) {
      const total = this.#messageLength + plen;
      if (this.#maxPayload > 0 && total > this.#maxPayload) return this.#fail('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009, 'Max payload size exceeded');
      this.#messageLength = total;
    }
    this.#opcode = opcode;
    this.#fin = fin;
    this.#payloadLength = plen;
    return h;
  }

  /** A complete frame's payload (a view of a read chunk, or an assembled Buffer). */
  #frame(payload: Buffer): void {
    const opcode = this.#opcode;
    if (opcode >= OP_CLOSE) {
      this.#control(opcode, payload);
      return;
    }
    if (opcode !== OP_CONTINUATION) {
      if (this.#fin) {
        // The common case: a whole message in one frame, no fragments array.
        this.#messageLength = 0;
        this.#message(opcode, payload);
        return;
      }
      this.#fragOpcode = opcode;
      this.#fragments.push(payload);
      return;
    }
    this.#fragments.push(payload);
    if (!this.#fin) return;
    const data = Buffer.concat(this.#fragments, this.#messageLength);
    const first = this.#fragOpcode;
    this.#fragOpcode = 0;
    this.#fragments = [];
    this.#messageLength = 0;
    this.#message(first, data);
  }

  #message(opcode: number, data: Buffer): void {
    if (opcode === OP_TEXT && !this.#skipUtf8 && !isUtf8(data)) {
      this.#fail('WS_ERR_INVALID_UTF8', 1007, 'invalid UTF-8 sequence');
      return;
    }
    this.emit('message', data, opcode === OP_BINARY);
  }

  #control(opcode: number, payload: Buffer): void {
    if (opcode === OP_PING) {
      if (this.#autoPong && this.#readyState === OPEN) this.#sendFrame(OP_PONG, payload);
      this.emit('ping', payload);
      return;
    }
    if (opcode === OP_PONG) {
      this.emit('pong', payload);
      return;
    }
    // Close (receiver.js controlMessage): an empty payload is 1005, one byte is a protocol error.
    let code = 1005;
    let reason = EMPTY;
    if (payload.length === 1) {
      this.#fail('WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 1002, 'invalid payload length 1');
      return;
    }
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isValidCloseCode(code)) {
        this.#fail('WS_ERR_INVALID_CLOSE_CODE', 1002, `invalid status code ${code}`);
        return;
      }
      // A copy: the reason outlives the read chunk it came in.
      reason = Buffer.from(payload.subarray(2));
      if (!this.#skipUtf8 && !isUtf8(reason)) {
        this.#fail('WS_ERR_INVALID_UTF8', 1007, 'invalid UTF-8 sequence');
        return;
      }
    }
    this.#rx = RX_STOPPED;
    this.#closeFrameReceived = true;
    this.#closeCode = code;
    this.#closeReason = reason;
    // Nothing more is read; let the socket flow (it may be paused) so its end and close arrive.
    this.#socket?.resume();
    if (this.#readyState === OPEN) this.#closeOpen(code === 1005 ? undefined : code, reason);
    else if (this.#closeFrameSent) this.#socket?.end();
  }

  /** A protocol error: stop reading, send a close frame with `closeCode`, emit 'error' (ws receiverOnError). */
  #fail(code: string, closeCode: number, message: string): -1 {
    this.#rx = RX_STOPPED;
    this.#assembly = undefined;
    this.#fragments = [];
    this.#socket?.resume();
    if (this.#readyState === OPEN) this.#closeOpen(closeCode, EMPTY);
    this.#emitError(new WebSocketProtocolError(code, closeCode, message));
    return -1;
  }

  // -- sending ---------------------------------------------------------------------------------

  /** One masked frame, its mask from the pool (refilled by randomFillSync, as ws does). */
  #sendFrame(opcode: number, payload: string | Buffer, prefixCode?: number): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    if (this.#randomAt === this.#random.length) {
      randomFillSync(this.#random);
      this.#randomAt = 0;
    }
    const out = maskedFrame(opcode, payload, this.#random, this.#randomAt, prefixCode);
    this.#randomAt += 4;
    socket.write(out);
  }

  /** Send a text (string) or binary (Buffer) message. Throws while connecting; ignored once closing (as ws without a callback). */
  send(data: string | Buffer): void {
    if (this.#readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (this.#readyState !== OPEN) return;
    this.#sendFrame(typeof data === 'string' ? OP_TEXT : OP_BINARY, data);
  }

  ping(data: Buffer = EMPTY): void {
    if (this.#readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (this.#readyState !== OPEN) return;
    if (data.length > 125) throw new RangeError('The data size must not be greater than 125 bytes');
    this.#sendFrame(OP_PING, data);
  }

  // -- closing ---------------------------------------------------------------------------------

  /**
   * Start the closing handshake (ws semantics): while connecting the handshake is aborted ('error',
   * then 'close'); when open a close frame is sent and the socket ends once the server's arrives, or
   * is destroyed after CLOSE_TIMEOUT_MS.
   */
  close(code?: number, reason?: string): void {
    if (this.#readyState === CLOSED) return;
    if (this.#readyState === CONNECTING) {
      this.#abortHandshake('WebSocket was closed before the connection was established');
      return;
    }
    if (this.#readyState === CLOSING) {
      if (this.#closeFrameSent && this.#closeFrameReceived) this.#socket?.end();
      return;
    }
    if (code !== undefined && !isValidCloseCode(code) && code !== 1005) throw new TypeError('First argument must be a valid error code number');
    const bytes = reason === undefined ? EMPTY : Buffer.from(reason);
    if (bytes.length > 123) throw new RangeError('The message must not be greater than 123 bytes');
    if (code === undefined && bytes.length > 0) throw new TypeError('A close reason needs a close code');
    this.#closeOpen(code, bytes);
  }

  #closeOpen(code: number | undefined, reason: Buffer): void {
    this.#readyState = CLOSING;
    this.#closeFrameSent = true;
    if (code === undefined || code === 1005) this.#sendFrame(OP_CLOSE, EMPTY);
    else this.#sendFrame(OP_CLOSE, reason, code);
    if (this.#closeFrameReceived) this.#socket?.end();
    this.#closeTimer = setTimeout(() => {
      this.#closeTimer = undefined;
      this.#socket?.destroy();
    }, CLOSE_TIMEOUT_MS);
    this.#closeTimer.unref();
  }

  /** Destroy the connection without a closing handshake ('close' with 1006, or the peer's code if one came). */
  terminate(): void {
    if (this.#readyState === CLOSED) return;
    if (this.#readyState === CONNECTING) {
      this.#abortHandshake('WebSocket was closed before the connection was established');
      return;
    }
    this.#readyState = CLOSING;
    this.#rx = RX_STOPPED;
    this.#socket?.destroy();
  }

  // -- flow control ----------------------------------------------------------------------------

  /** Stop reading the socket; frames of the current read not yet delivered wait for resume(). */
  pause(): void {
    if (this.#readyState === CONNECTING || this.#readyState === CLOSED) return;
    this.#paused = true;
    this.#socket?.pause();
  }

  resume(): void {
    if (this.#readyState === CONNECTING || this.#readyState === CLOSED) return;
    this.#paused = false;
    // What was left of the read that pause() cut short comes first, on its own turn (never inside the caller).
    if (this.#leftover !== undefined && !this.#leftoverScheduled) {
      this.#leftoverScheduled = true;
      setImmediate(this.#drainLeftover);
    }
    this.#socket?.resume();
  }
}

/** The default upstream socket factory's constructor call, for pool.ts. */
export function upstreamWebSocket(url: string, options: UpstreamSocketOptions): UpstreamSocket {
  return new UpstreamWebSocket(url, options);
}
