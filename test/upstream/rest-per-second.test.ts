/**
 * REST limits counted per second and bans that grow per request (Pionex, exchanges.md §4: 10 requests/s
 * per IP; past it HTTP 429 and a 60 s ban extended by 10 s for every further request): the RestClient
 * lets at most `rest.requestsPerSecond` requests out in any rolling second, and a gate answer that
 * arrives while the gate is closed (a request that was in flight) lengthens the window by
 * `rest.repeatPenaltyMs`, so no request is ever sent into the venue's extended ban. Against a real HTTP
 * peer on port 0 that keeps Pionex's books.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { EnvSchema } from '../../src/config/schema.ts';
import { openTimeAt } from '../../src/core/intervals.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { RestClient } from '../../src/upstream/rest.ts';
import { registerVenueStreams, type PolledVenueAdapter } from '../../src/upstream/venue.ts';
import { pionexSpot } from '../../src/venues/pionex/spot.ts';

const MIN = 60_000;

/** A Pionex klines endpoint that records arrivals and can ban like Pionex (ban ms, + extension per request inside it). */
class PionexRest {
  readonly arrivals: number[] = [];
  answered429 = 0;
  /** Answer every ordinary request this late. */
  delayMs = 0;
  #server: Server | undefined;
  #banUntil = 0;
  #ban: { readonly ms: number; readonly extensionMs: number; readonly barrier: number } | undefined;
  #held: Array<() => void> = [];

  /** The next `barrier` requests are held until all have arrived, then the first starts a ban and all of them are inside it. */
  banNext(ms: number, extensionMs: number, barrier: number): void {
    this.#ban = { ms, extensionMs, barrier };
  }

  async start(): Promise<string> {
    this.#server = createServer((req, res) => {
      this.#handle(req, res);
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const now = performance.now();
    this.arrivals.push(now);
    const ban = this.#ban;
    if (ban !== undefined) {
      if (this.#banUntil === 0) this.#banUntil = now + ban.ms;
      else this.#banUntil += ban.extensionMs;
      this.#held.push(() => {
        this.answered429++;
        res.writeHead(429, { 'content-type': 'application/json' }).end('{"result":false,"code":"TOO_MANY_REQUESTS"}');
      });
      if (this.#held.length === ban.barrier) {
        this.#ban = undefined;
        for (const answer of this.#held.splice(0)) answer();
      }
      return;
    }
    if (now < this.#banUntil) {
      // Inside the ban: Pionex extends it for every request.
      this.#banUntil += 10_000;
      this.answered429++;
      res.writeHead(429, { 'content-type': 'application/json' }).end('{"result":false}');
      return;
    }
    if (this.delayMs > 0) {
      setTimeout(() => {
        this.#rows(req, res);
      }, this.delayMs);
      return;
    }
    this.#rows(req, res);
  }

  #rows(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const end = Number(url.searchParams.get('endTime'));
    const limit = Number(url.searchParams.get('limit'));
    const klines = [];
    for (let i = 0; i < limit; i++) {
      const time = openTimeAt('1m', end) - i * MIN;
      klines.push({ time, open: '1', close: '1', high: '1', low: '1', volume: '1' });
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: true, data: { klines }, timestamp: Date.now() }));
  }
}

let peer: PionexRest | undefined;
let rest: RestClient | undefined;
afterEach(async () => {
  await rest?.close();
  await peer?.close();
  rest = undefined;
  peer = undefined;
});

async function setup(venue: PolledVenueAdapter = pionexSpot): Promise<{ rest: RestClient; peer: PionexRest; streams: ReturnType<typeof registerVenueStreams>; events: StatusEvent[] }> {
  peer = new PionexRest();
  const url = await peer.start();
  const symbols = Array.from({ length: 30 }, (_, i) => `S${i}_USDT`);
  const config = EnvSchema.parse({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: symbols.join(','), CONNECTOR_PIONEX_REST_URL: url, CONNECTOR_REST_POOL_CONNECTIONS: 10 });
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  rest = new RestClient({ config, venue, restUrl: url, status, log: pino({ level: 'silent' }), retryBaseMs: 10 });
  return { rest, peer, streams: registerVenueStreams(new StreamRegistry(), venue, symbols, ['1m']), events };
}

describe('REST limits per second (Pionex: 10 requests/s per IP)', () => {
  it('lets at most rest.requestsPerSecond requests out in any rolling second, however many are asked for at once', async () => {
    const s = await setup();
    const cap = pionexSpot.rest.requestsPerSecond ?? 0;
    const to = openTimeAt('1m', Date.now());
    const got = await Promise.all(s.streams.map((ref) => s.rest.fetchRange(ref, to - 2 * MIN, to)));
    expect(got.every((g) => g.candles.length === 2)).toBe(true);
    expect(s.peer.arrivals).toHaveLength(30);
    // Any cap + 1 consecutive arrivals span a second (less 50 ms of loopback jitter between send and arrival).
    const spans = s.peer.arrivals.slice(cap).map((t, i) => t - (s.peer.arrivals[i] ?? 0));
    expect(Math.min(...spans)).toBeGreaterThan(950);
  });

  it('counts a request in the second until a second after its answer, so two bursts never land in one venue second, even when answers are slow', async () => {
    const s = await setup();
    const rate = pionexSpot.rest.requestsPerSecond ?? 0;
    // Answers take 300 ms: a window counted from the send would let the next burst out 1 s after the
    // first left, i.e. 700 ms after it arrived.
    s.peer.delayMs = 300;
    const to = openTimeAt('1m', Date.now());
    await Promise.all(s.streams.slice(0, 20).map((ref) => s.rest.fetchRange(ref, to - MIN, to)));
    expect(s.peer.arrivals).toHaveLength(20);
    // No venue window of a second ever holds more than the rate.
    const inWindow = s.peer.arrivals.map((t) => s.peer.arrivals.filter((u) => u > t - 1000 && u <= t).length);
    expect(Math.max(...inWindow)).toBeLessThanOrEqual(rate);
  });

  it('keeps the gate closed for the ban Pionex extends with every request that was in flight, and sends nothing into it', async () => {
    // Pionex's rule at test scale: a 1 s ban, +1 s for every request inside it.
    const venue: PolledVenueAdapter = { ...pionexSpot, rest: { ...pionexSpot.rest, gateStatuses: { 429: 1000 }, repeatPenaltyMs: 1000 } };
    const s = await setup(venue);
    const to = openTimeAt('1m', Date.now());
    // Four requests on the wire at once; all four land inside the ban the first one starts (1 + 3 s).
    s.peer.banNext(1000, 1000, 4);
    const got = await Promise.race([
      Promise.all(s.streams.slice(0, 4).map((ref) => s.rest.fetchRange(ref, to - MIN, to))),
      new Promise<'probing the ban'>((resolve) => {
        setTimeout(() => {
          resolve('probing the ban');
        }, 12_000);
      }),
    ]);
    expect(got).not.toBe('probing the ban');
    // Only the four that were in flight were refused: none was sent inside the grown ban.
    expect(s.peer.answered429).toBe(4);
    expect(s.peer.arrivals).toHaveLength(8);
    const retries = s.peer.arrivals.slice(4);
    expect(Math.min(...retries) - (s.peer.arrivals[0] ?? 0)).toBeGreaterThanOrEqual(4000);
    // The first answer closes it for the ban; each further one grows it by the penalty.
    const windows = s.events.flatMap((e) => (e.type === 'ratelimit' ? [e.retryAfterMs] : []));
    expect(windows).toHaveLength(4);
    expect(windows[0]).toBe(1000);
    expect(windows[3]).toBeGreaterThan(3900);
    expect(s.rest.stats().rateLimited).toBe(4);
  });
});
