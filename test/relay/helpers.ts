/** Shared fixtures for the relay tests: a relay on 127.0.0.1:0, candles, and a buffering ws client. */
import { connect, type Socket } from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';
import type { Candle, StreamRef } from '../../src/core/candle.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import type { Config } from '../../src/config/schema.ts';
import type { Clock } from '../../src/core/clock.ts';
import { createLogger, type Logger } from '../../src/ops/logger.ts';
import { RelayServer, type ReplayFetch } from '../../src/relay/server.ts';

export type RelayConfig = Config['relay'];

export function relayConfig(overrides: Partial<RelayConfig> = {}): RelayConfig {
  return {
    host: '127.0.0.1',
    port: 0,
    token: undefined,
    maxClients: 100,
    maxBufferedBytes: 4 * 1024 * 1024,
    maxFrameBytes: 64 * 1024,
    maxMessagesPerSecond: 5,
    maxStreamsPerClient: 1024,
    pingIntervalMs: 20_000,
    clientTimeoutMs: 60_000,
    closeTimeoutMs: 30_000,
    maxTotalBufferedBytes: undefined,
    maxClientsPerIp: 50,
    historyCandles: 1440,
    replayMaxCandles: 5000,
    tls: undefined,
    ...overrides,
  };
}

export const registry = new StreamRegistry();
export const BTC = registry.register('binance', 'btcusdt@kline_1m', 'BTCUSDT', '1m');
export const ETH = registry.register('binance', 'ethusdt@kline_1m', 'ETHUSDT', '1m');
export const TZ = registry.register('binance', 'btcusdt@kline_1d@+08:00', 'BTCUSDT', '1d');
/** Many extra streams for the per-client stream cap. */
export const MANY: StreamRef[] = Array.from({ length: 1100 }, (_, i) => registry.register('binance', `sym${i}usdt@kline_1m`, `SYM${i}USDT`, '1m'));

export function resolve(name: string): StreamRef | undefined {
  return registry.get('binance', name);
}

export interface Harness {
  relay: RelayServer;
  url: string;
  events: StatusEvent[];
  status: StatusStream;
}

const running: RelayServer[] = [];
const clients: WebSocket[] = [];
const sockets: Socket[] = [];

/** A clock that moves only when told to (rate-limit tests: refills happen exactly when the test says). */
export class ManualClock implements Clock {
  #ms = 1_000_000;
  now(): number {
    return 1_700_000_000_000 + this.#ms;
  }
  monotonic(): number {
    return this.#ms;
  }
  advance(ms: number): void {
    this.#ms += ms;
  }
}

export interface StartOptions {
  readonly clock?: Clock;
  readonly log?: Logger;
  /** V8's heap limit as the relay should see it (the default total budget derives from it). */
  readonly heapLimitBytes?: number;
  /** REST below the history, for resume tests. */
  readonly replay?: ReplayFetch;
  /** CONNECTOR_HOLE_HORIZON_MS as the relay's replay should apply it. */
  readonly holeHorizonMs?: number;
}

export async function startRelay(overrides: Partial<RelayConfig> = {}, options: StartOptions = {}): Promise<Harness> {
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const relay = new RelayServer({
    config: relayConfig(overrides),
    status,
    log: options.log ?? createLogger('silent'),
    resolve,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.heapLimitBytes === undefined ? {} : { heapLimitBytes: options.heapLimitBytes }),
    ...(options.replay === undefined ? {} : { replay: options.replay }),
    ...(options.holeHorizonMs === undefined ? {} : { holeHorizonMs: options.holeHorizonMs }),
  });
  running.push(relay);
  const { port } = await relay.listen();
  return { relay, url: `ws://127.0.0.1:${port}`, events, status };
}

/** afterEach: close every client, raw socket and relay this file opened. */
export async function cleanup(): Promise<void> {
  for (const c of clients.splice(0)) c.terminate();
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(running.splice(0).map((r) => r.close()));
}

/** A ws client that buffers every text message, so tests can await them in order. */
export class TestClient {
  readonly ws: WebSocket;
  readonly messages: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiter: (() => void) | undefined;

  constructor(url: string, options?: ClientOptions) {
    this.ws = new WebSocket(url, options);
    clients.push(this.ws);
    this.ws.on('message', (data: Buffer) => {
      this.messages.push(data.toString('utf8'));
      this.#waiter?.();
    });
    this.ws.on('error', () => {
      // surfaced through `opened` / `closed`
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code: number, reason: Buffer) => {
        resolve({ code, reason: reason.toString('utf8') });
        this.#waiter?.();
      });
    });
  }

  static async open(url: string, options?: ClientOptions): Promise<TestClient> {
    const c = new TestClient(url, options);
    await new Promise<void>((resolve, reject) => {
      c.ws.once('open', () => {
        resolve();
      });
      c.ws.once('error', reject);
    });
    return c;
  }

  /** The next unread message (or rejects after `timeoutMs`). */
  async next(timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('closed while waiting for a message');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.messages.shift()!;
  }

  async nextJson(timeoutMs?: number): Promise<unknown> {
    return JSON.parse(await this.next(timeoutMs)) as unknown;
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  /**
   * Stop reading (the client's TCP socket is paused, so the kernel buffers fill and the relay's unsent
   * bytes for it grow) while it can still send.
   */
  stopReading(): void {
    (this.ws as unknown as { _socket: Socket })._socket.pause();
  }

  /** Send a request and return the next message (the reply: the relay answers in order). */
  async request(value: unknown): Promise<unknown> {
    this.send(value);
    return this.nextJson();
  }
}

/** Expect a failed upgrade and return its HTTP status. */
export function upgradeStatus(url: string, options?: ClientOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    clients.push(ws);
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    ws.on('open', () => {
      reject(new Error('upgrade unexpectedly succeeded'));
    });
    ws.on('error', (err) => {
      reject(err);
    });
  });
}

/**
 * A raw TCP client that completes the WebSocket upgrade and then never reads again: the kernel
 * buffers fill and the relay's unsent bytes for it grow.
 */
export function stuckClient(port: number, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => {
      // the relay destroys it: expected
    });
    socket.once('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      if (head.startsWith('HTTP/1.1 101')) resolve(socket);
      else reject(new Error(`upgrade failed: ${head.split('\r\n')[0] ?? ''}`));
    };
    socket.on('data', onData);
  });
}

let seqOpen = 1_700_000_000_000;

/** A ws candle's raw event as the text a relay client receives. */
export function rawText(candle: Candle): string {
  if (candle.raw === undefined) throw new Error('candle without raw bytes');
  return candle.raw.toString('utf8');
}

/** A Binance kline event as it came off the wire, with idiosyncratic spacing so byte-identity is checked. */
export function binanceRaw(stream: StreamRef, openTime: number, closed: boolean, extra = ''): string {
  return (
    `{"e":"kline","E":${openTime + 1234},"s":"${stream.symbol}","k":{"t":${openTime},"T":${openTime + 59_999},"s":"${stream.symbol}",` +
    `"i":"${stream.interval}","f":100,"L":200,"o":"0.01000000","c":"0.01010000","h":"0.01020000","l":"0.00990000",` +
    `"v":"1000.00000000","n":101,"x":${closed},"q":"10.00000000","V":"500.00000000","Q":"5.00000000","B":"123456"${extra}}}`
  );
}

export function wsCandle(stream: StreamRef, options: { openTime?: number; closed?: boolean; extra?: string } = {}): Candle {
  const openTime = options.openTime ?? (seqOpen += 60_000);
  const closed = options.closed ?? true;
  return {
    stream,
    openTime,
    closeTime: openTime + 59_999,
    eventTime: openTime + 1234,
    closed,
    open: '0.01000000',
    high: '0.01020000',
    low: '0.00990000',
    close: '0.01010000',
    volume: '1000.00000000',
    quoteVolume: '10.00000000',
    takerBuyBaseVolume: '500.00000000',
    takerBuyQuoteVolume: '5.00000000',
    trades: 101,
    firstTradeId: 100,
    lastTradeId: 200,
    ignore: '123456',
    source: 'ws',
    raw: Buffer.from(binanceRaw(stream, openTime, closed, options.extra ?? '')),
    receivedAt: performance.now(),
  };
}

export function restCandle(stream: StreamRef, openTime: number): Candle {
  return {
    stream,
    openTime,
    closeTime: openTime + 59_999,
    eventTime: openTime + 70_000,
    closed: true,
    open: '27000.01000000',
    high: '27100.00000000',
    low: '26900.50000000',
    close: '27050.00000000',
    volume: '12.34500000',
    quoteVolume: '333333.33000000',
    takerBuyBaseVolume: '6.00000000',
    takerBuyQuoteVolume: '162000.00000000',
    trades: 42,
    firstTradeId: -1,
    lastTradeId: -1,
    ignore: '0',
    source: 'rest',
    raw: undefined,
    receivedAt: performance.now(),
  };
}

/** Wait until `predicate` holds (polling every 10 ms), or throw after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
