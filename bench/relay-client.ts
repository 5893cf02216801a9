/**
 * The bench's relay client: a WebSocket client on a bare TCP socket that counts the frames it gets
 * without making a message of each (no Buffer, no event, no parse per frame). With 100 clients at
 * 10,000 msgs/s the load generator receives a million frames a second on the same two cores as the
 * daemon; what it must spend there is the kernel's reads (~60 % of a core), not JS per frame as `ws`
 * clients do (ARCHITECTURE.md, Performance).
 *
 * What it does speak: the RFC 6455 handshake, masked client frames (SUBSCRIBE, pong), the server's
 * unmasked frames of any length, pings (answered), close. Replies to SUBSCRIBE are read in full while
 * subscribing; after that, data frames are only counted.
 *
 * It sends with the daemon's own `maskedFrame` (src/upstream/wsclient.ts). Why it does not receive with
 * that client, which reads frames the same way: it hands every frame over as a view and an event, and
 * that is measurable here. The same counting wrapped around it took 58–63 % of a core for the 100 clients at 10,000 msgs/s against this
 * file's 48–49 %, and the daemon's p99 with it rose from 2.8–2.9 ms to 3.5–4.3 ms (two runs each,
 * interleaved, `node bench/run.ts --only 'full x100 @10k/s' --rounds 1`, 15:52 UTC, load ~1.5): the
 * load generator's own cost would be charged to the daemon.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { maskedFrame } from '../src/upstream/wsclient.ts';

const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;

/** One client frame, masked (clients must mask, RFC 6455 §5.3), with a fresh mask. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  return maskedFrame(opcode, payload, randomBytes(4));
}

export class CountingRelayClient {
  readonly #socket: Socket;
  messages = 0;
  bytes = 0;
  #open = false;
  /** Bytes of a frame header split across reads. */
  #carry: Buffer | undefined;
  /** Payload bytes of the current frame still to come. */
  #skip = 0;
  #opcode = 0;
  /** The current frame's payload, when it is kept (control frames; every frame while subscribing). */
  #parts: Buffer[] | undefined;
  /** While subscribing: the next reply (a text frame that is not a data frame) goes here. */
  #onReply: ((text: string) => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
  }

  get open(): boolean {
    return this.#open && !this.#socket.destroyed;
  }

  /** Connect to `ws://host:port/path` and SUBSCRIBE to each params list in turn (each reply awaited). */
  static async open(url: string, subscribes: readonly string[][]): Promise<CountingRelayClient> {
    const u = new URL(url);
    const socket = connect({ host: u.hostname, port: Number(u.port), noDelay: true });
    const c = new CountingRelayClient(socket);
    await c.#handshake(u);
    let id = 0;
    for (const params of subscribes) {
      const reply = new Promise<string>((resolve) => {
        c.#onReply = resolve;
      });
      socket.write(clientFrame(OP_TEXT, Buffer.from(JSON.stringify({ method: 'SUBSCRIBE', params, id: ++id }))));
      const text = await reply;
      if (!text.startsWith('{"result"')) throw new Error(`relay refused SUBSCRIBE: ${text}`);
    }
    c.#onReply = undefined;
    return c;
  }

  #handshake(u: URL): Promise<void> {
    const socket = this.#socket;
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          socket.destroy();
          reject(new Error(`relay upgrade refused: ${status}`));
          return;
        }
        this.#open = true;
        socket.on('data', (d: Buffer) => {
          this.#onData(d);
        });
        socket.on('close', () => {
          this.#open = false;
        });
        socket.on('error', () => {
          // A slow consumer cut by the relay: seen through `open`.
        });
        const rest = head.subarray(end + 4);
        if (rest.length > 0) this.#onData(rest);
        resolve();
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.write(
          `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
    });
  }

  #onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    let buf = chunk;
    if (this.#carry !== undefined) {
      buf = Buffer.concat([this.#carry, chunk]);
      this.#carry = undefined;
    }
    const len = buf.length;
    let off = 0;
    while (off < len) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, len - off);
        this.#parts?.push(buf.subarray(off, off + n));
        this.#skip -= n;
        off += n;
        if (this.#skip === 0) this.#endFrame();
        continue;
      }
      if (len - off < 2) {
        this.#carry = Buffer.from(buf.subarray(off));
        return;
      }
      const b1 = buf[off + 1]! & 0x7f;
      let plen = b1;
      let head = 2;
      if (b1 === 126) {
        if (len - off < 4) {
          this.#carry = Buffer.from(buf.subarray(off));
          return;
        }
        plen = buf.readUInt16BE(off + 2);
        head = 4;
      } else if (b1 === 127) {
        if (len - off < 10) {
          this.#carry = Buffer.from(buf.subarray(off));
          return;
        }
        plen = Number(buf.readBigUInt64BE(off + 2));
        head = 10;
      }
      this.#opcode = buf[off]! & 0x0f;
      off += head;
      if (this.#opcode === OP_TEXT || this.#opcode === OP_BINARY) this.messages++;
      this.#parts = this.#opcode >= OP_CLOSE || this.#onReply !== undefined ? [] : undefined;
      this.#skip = plen;
      if (plen === 0) this.#endFrame();
    }
  }

  #endFrame(): void {
    const parts = this.#parts;
    this.#parts = undefined;
    if (parts === undefined) return;
    const payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (this.#opcode === OP_PING) this.#socket.write(clientFrame(0xa, payload));
    else if (this.#opcode === OP_CLOSE) {
      this.#open = false;
      this.#socket.end(clientFrame(OP_CLOSE, payload.subarray(0, 2)));
    } else if (this.#opcode === OP_TEXT && this.#onReply !== undefined && !payload.subarray(0, 10).toString('latin1').startsWith('{"stream"')) {
      // A reply, not a data frame of a stream already subscribed (those were counted above).
      this.messages--;
      const reply = this.#onReply;
      this.#onReply = undefined;
      reply(payload.toString('utf8'));
    }
  }

  terminate(): void {
    this.#open = false;
    this.#socket.destroy();
  }
}
