/**
 * Frame decoding (venue.ts FrameEncoding, upstream/decode.ts) through the venue-agnostic pool: a fake
 * venue that gzips every frame (as BingX does), against a real `ws` server on port 0. Decoded frames
 * reach the parser and heartbeats are recognised after decoding; a frame that would inflate past
 * CONNECTOR_MAX_MESSAGE_BYTES, or is not gzip at all, is counted as a parse error and dropped, and
 * the frames after it still arrive on the same socket.
 */
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { EnvSchema } from '../../src/config/schema.ts';
import type { Candle } from '../../src/core/candle.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { GzipFrameDecoder, frameDecoder } from '../../src/upstream/decode.ts';
import { UpstreamPool } from '../../src/upstream/pool.ts';
import { registerVenueStreams, type VenueAdapter } from '../../src/upstream/venue.ts';
import { fakeVenue } from './fake-venue.ts';
import { eventsOf, waitFor } from './helpers.ts';

const MAX = 64 * 1024;

let wss: WebSocketServer | undefined;
let pool: UpstreamPool | undefined;

afterEach(async () => {
  await pool?.close();
  if (wss !== undefined) {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss?.close(() => { resolve(); }));
  }
  pool = undefined;
  wss = undefined;
});

function gzipVenue(): VenueAdapter {
  const base = fakeVenue({
    heartbeat: { kind: 'server-json', pingPrefix: 'Ping', answer: () => 'Pong', maxFrameBytes: 4 },
  });
  return { ...base, ws: { ...base.ws, encoding: 'gzip' } };
}

describe('frame decoding', () => {
  it('gunzips every frame before heartbeats and the parser see it, and counts and drops frames that inflate past the cap or are not gzip, keeping the socket', async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss?.once('listening', resolve));
    const address = wss.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const received: string[] = [];
    let peer: WebSocket | undefined;
    wss.on('connection', (ws) => {
      peer = ws;
      ws.on('message', (data) => received.push((data as Buffer).toString('utf8')));
    });

    const venue = gzipVenue();
    const config = EnvSchema.parse({ CONNECTOR_MAX_MESSAGE_BYTES: MAX, CONNECTOR_PING_TIMEOUT_MS: 60_000 });
    const registry = new StreamRegistry();
    const streams = registerVenueStreams(registry, venue, ['AAA'], ['1m']);
    const status = new StatusStream();
    const events: StatusEvent[] = [];
    status.subscribe((e) => events.push(e));
    const candles: Candle[] = [];
    pool = new UpstreamPool({
      config,
      venue,
      wsUrl: `ws://127.0.0.1:${port}`,
      streams,
      registry,
      status,
      log: pino({ level: 'silent' }),
      handlers: { candle: (c) => candles.push(c), resync: () => undefined },
    });
    await pool.start();
    await waitFor('connected', () => peer !== undefined && received.length > 0); // the subscribe frame
    const send = (frame: Buffer): void => peer?.send(frame, { binary: true });

    send(gzipSync(JSON.stringify({ s: 'k.AAA', t: 1_700_000_040_000 })));
    send(gzipSync('Ping'));
    await waitFor('a candle and a pong', () => candles.length === 1 && received.includes('Pong'));
    expect(candles[0]?.openTime).toBe(1_700_000_040_000);

    // A few KB of gzip that would inflate to 4 MB, far past the 64 KiB cap; then bytes that are not gzip.
    const bomb = gzipSync(Buffer.alloc(4 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(MAX);
    send(bomb);
    send(Buffer.from('{"s":"k.AAA","t":1700000100000}'));
    send(gzipSync(JSON.stringify({ s: 'k.AAA', t: 1_700_000_100_000 })));
    await waitFor('the candle after the bad frames', () => candles.length === 2);
    expect(candles[1]?.openTime).toBe(1_700_000_100_000);
    expect(pool.stats().parseErrors).toBe(2);
    const errors = eventsOf(events, 'parse.error');
    expect(errors[0]?.reason).toBe(`frame inflates past ${MAX} bytes`);
    // The second within the report interval is counted, not reported again.
    expect(errors).toHaveLength(1);
    expect(eventsOf(events, 'connection.state').filter((e) => e.to === 'disconnected')).toEqual([]);
  });

  it('caps the decoder’s output at the message size and tells corrupt input from too large, without throwing', () => {
    const d = new GzipFrameDecoder(1024);
    expect(d.decode(gzipSync('x'.repeat(1024))).toString()).toBe('x'.repeat(1024));
    expect(d.decode(gzipSync('x'.repeat(1025)))).toBe('too-large');
    expect(d.decode(Buffer.from('not gzip'))).toBe('corrupt');
    expect(d.decode(gzipSync('truncated member').subarray(0, 12))).toBe('corrupt');
    expect(frameDecoder(undefined, 1024)).toBeUndefined();
    expect(frameDecoder('none', 1024)).toBeUndefined();
  });
});
