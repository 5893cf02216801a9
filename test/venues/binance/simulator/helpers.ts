/** Test helpers: a real `ws` client that records everything, and a bounded poll. */
import { afterEach } from 'vitest';
import { WebSocket } from 'ws';
import type { ClientOptions } from 'ws';
import { BinanceSimulator, type SimulatorOptions } from '../../../../src/venues/binance/simulator/server.ts';

/** Poll `cond` every 10 ms until true; rejects after `timeoutMs` (every wait is bounded). */
export async function waitUntil(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

export class TestClient {
  readonly ws: WebSocket;
  readonly messages: string[] = [];
  readonly pings: Buffer[] = [];
  close: CloseInfo | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      this.messages.push(data.toString('utf8'));
    });
    ws.on('ping', (data: Buffer) => {
      this.pings.push(data);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.close = { code, reason: reason.toString('utf8') };
    });
    ws.on('error', () => {
      // recorded through 'close'
    });
  }

  static open(url: string, options: ClientOptions = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      const client = new TestClient(ws);
      ws.once('open', () => {
        resolve(client);
      });
      ws.once('error', reject);
    });
  }

  /** Rejects with the HTTP status of a refused upgrade. */
  static refusal(url: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('error', () => {
        // 'unexpected-response' carries the status
      });
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.once('open', () => {
        ws.close();
        reject(new Error('upgrade was accepted'));
      });
    });
  }

  json(): unknown[] {
    return this.messages.map((m) => JSON.parse(m) as unknown);
  }

  send(obj: unknown): void {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** Send a control message and wait for the reply carrying the same id. */
  async request(obj: { id: unknown } & Record<string, unknown>, timeoutMs = 3000): Promise<Record<string, unknown>> {
    const from = this.messages.length;
    this.send(obj);
    let found: Record<string, unknown> | undefined;
    await waitUntil(
      () => {
        for (let i = from; i < this.messages.length; i++) {
          const m = JSON.parse(this.messages[i] ?? 'null') as Record<string, unknown> | null;
          if (m !== null && 'id' in m && m.id === obj.id && !('stream' in m) && !('e' in m)) {
            found = m;
            return true;
          }
        }
        return false;
      },
      timeoutMs,
      `reply to id ${JSON.stringify(obj.id)}`,
    );
    if (found === undefined) throw new Error('unreachable');
    return found;
  }

  async waitClosed(timeoutMs = 5000): Promise<CloseInfo> {
    await waitUntil(() => this.close !== undefined, timeoutMs, 'socket close');
    if (this.close === undefined) throw new Error('unreachable');
    return this.close;
  }

  terminate(): void {
    this.ws.terminate();
  }
}

export interface KlineEvent {
  e: string;
  E: number;
  s: string;
  k: { t: number; T: number; s: string; i: string; x: boolean; o: string; c: string; h: string; l: string; v: string; n: number; L: number; f: number };
}

/** Kline payloads from a client's messages, unwrapping combined envelopes. */
export function klineEvents(c: TestClient): { stream: string | undefined; data: KlineEvent; text: string }[] {
  const out: { stream: string | undefined; data: KlineEvent; text: string }[] = [];
  for (const text of c.messages) {
    const m = JSON.parse(text) as Record<string, unknown>;
    if ('stream' in m && typeof m.stream === 'string') {
      const d = m.data as KlineEvent;
      if (d.e === 'kline') out.push({ stream: m.stream, data: d, text });
    } else if (m.e === 'kline') {
      out.push({ stream: undefined, data: m as unknown as KlineEvent, text });
    }
  }
  return out;
}

/**
 * One simulator and its clients per test: `start()` and `connect()` register them, and an afterEach
 * hook (installed by this call) terminates the clients and closes the simulator.
 */
export function useSimulator(): {
  start: (options?: SimulatorOptions) => Promise<BinanceSimulator>;
  connect: (url: string, autoPong?: boolean) => Promise<TestClient>;
} {
  let sim: BinanceSimulator | undefined;
  const clients: TestClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await sim?.close();
    sim = undefined;
  });
  return {
    start: async (options = {}) => {
      sim = await BinanceSimulator.start({ openUpdateMs: 100, ...options });
      return sim;
    },
    connect: async (url, autoPong = true) => {
      const c = await TestClient.open(url, { autoPong });
      clients.push(c);
      return c;
    },
  };
}

/** A wall clock running `speed` times faster than real time, so 1s candles close every 1000/speed ms. */
export function fastClock(speed: number): () => number {
  const base = 1_700_000_000_000;
  const t0 = performance.now();
  return () => base + Math.floor((performance.now() - t0) * speed);
}

export interface RestAnswer {
  readonly status: number;
  /** Parsed JSON, or the text when the body is not JSON (the 403 WAF page). */
  readonly body: unknown;
  readonly headers: Headers;
}

/** GET a simulator REST path and read the whole answer. */
export async function restGet(baseUrl: string, path: string): Promise<RestAnswer> {
  const res = await fetch(`${baseUrl}${path}`);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    // non-JSON bodies stay text
  }
  return { status: res.status, body, headers: res.headers };
}

/** Requests arriving just after a rejection may have been on the wire already: the simulator excuses those. */
export function pastInFlightGrace(): Promise<void> {
  return sleep(80);
}
