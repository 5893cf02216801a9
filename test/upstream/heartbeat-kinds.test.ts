/**
 * Every heartbeat kind the upstream implements (venue.ts HeartbeatKind), each driven by a tiny fake
 * venue against a real `ws` server on port 0: server WebSocket pings (Binance), client text pings
 * (OKX `ping`), client JSON pings (Bybit `{"op":"ping"}`) and server JSON pings that want an answer
 * (BingX `{"ping":…}`). Waits are event-driven (polling what the server saw), never fixed sleeps
 * standing in for a deadline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { EnvSchema } from '../../src/config/schema.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { UpstreamPool } from '../../src/upstream/pool.ts';
import { registerVenueStreams, type HeartbeatKind } from '../../src/upstream/venue.ts';
import { fakeVenue } from './fake-venue.ts';
import { eventsOf, waitFor } from './helpers.ts';

interface FakeServer {
  readonly url: string;
  /** Text frames the server received, in order. */
  readonly texts: string[];
  /** WebSocket ping / pong frames the server received. */
  pings: number;
  pongs: number;
  /** Per-connection behaviour, read on every event (tests flip it). */
  answerPings: boolean;
  sendData: boolean;
  serverPings: 'none' | 'ws' | 'json';
  connections: number;
  close(): Promise<void>;
}

let server: FakeServer | undefined;
let pool: UpstreamPool | undefined;

afterEach(async () => {
  await pool?.close();
  await server?.close();
  pool = undefined;
  server = undefined;
});

async function startServer(answer: (text: string) => string | undefined): Promise<FakeServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const address = wss.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const timers = new Set<NodeJS.Timeout>();
  const s: FakeServer = {
    url: `ws://127.0.0.1:${port}`,
    texts: [],
    pings: 0,
    pongs: 0,
    answerPings: true,
    sendData: true,
    serverPings: 'none',
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearInterval(t);
        for (const c of wss.clients) c.terminate();
        wss.close(() => {
          resolve();
        });
      }),
  };
  let seq = 0;
  wss.on('connection', (ws: WebSocket) => {
    s.connections++;
    const t = setInterval(() => {
      if (s.sendData) ws.send(JSON.stringify({ s: 'k.AAA', t: 1_700_000_000_000 }));
      if (s.serverPings === 'ws') ws.ping();
      if (s.serverPings === 'json') ws.send(JSON.stringify({ ping: String(++seq), time: '2026-01-01T00:00:00Z' }));
    }, 50);
    timers.add(t);
    ws.on('close', () => {
      clearInterval(t);
      timers.delete(t);
    });
    ws.on('ping', () => {
      s.pings++;
    });
    ws.on('pong', () => {
      s.pongs++;
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = (data as Buffer).toString('utf8');
      s.texts.push(text);
      const reply = s.answerPings ? answer(text) : undefined;
      if (reply !== undefined) ws.send(reply);
    });
  });
  return s;
}

function startPool(url: string, heartbeat: HeartbeatKind, env: Record<string, number> = {}) {
  const config = EnvSchema.parse({
    CONNECTOR_PING_TIMEOUT_MS: 3000,
    CONNECTOR_PONG_TIMEOUT_MS: 200,
    CONNECTOR_MAX_MISSED_PINGS: 2,
    CONNECTOR_STALE_STREAM_MS: 60_000,
    CONNECTOR_RECONNECT_BASE_MS: 20,
    CONNECTOR_RECONNECT_MAX_MS: 100,
    ...env,
  });
  const venue = fakeVenue({ heartbeat });
  const registry = new StreamRegistry();
  const streams = registerVenueStreams(registry, venue, ['AAA'], ['1m']);
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  let candles = 0;
  const p = new UpstreamPool({
    config,
    venue,
    wsUrl: url,
    streams,
    registry,
    status,
    log: pino({ level: 'silent' }),
    handlers: {
      candle: () => {
        candles++;
      },
      resync: () => undefined,
    },
  });
  return { pool: p, events, candles: () => candles };
}

const disconnects = (events: readonly StatusEvent[]) => eventsOf(events, 'connection.state').filter((e) => e.to === 'disconnected');

describe('heartbeat kinds (fake venue)', () => {
  it('client text pings (OKX `ping`): one every intervalMs; `pong` answers it and is never taken for data; unanswered ones replace the socket', async () => {
    const s = (server = await startServer((t) => (t === 'ping' ? 'pong' : undefined)));
    const x = startPool(s.url, { kind: 'client-text', intervalMs: 100, ping: 'ping', pong: 'pong' });
    pool = x.pool;
    await x.pool.start();
    await waitFor('three answered pings', () => s.texts.filter((t) => t === 'ping').length >= 3);
    expect(x.candles()).toBeGreaterThan(0);
    expect(x.pool.stats().parseErrors).toBe(0);
    expect(disconnects(x.events)).toEqual([]);
    expect(s.pings).toBe(0); // no WebSocket-level pings for this kind

    // Data proves liveness and clears missed pongs (as with WebSocket pings); with neither data nor
    // pongs the misses replace the socket long before the 3 s liveness deadline would.
    s.answerPings = false;
    s.sendData = false;
    await waitFor('the socket replaced for unanswered pings', () => disconnects(x.events).length > 0);
    expect(disconnects(x.events)[0]?.reason).toMatch(/2 pings in a row unanswered within 200 ms/);
  });

  it('client JSON pings (Bybit `{"op":"ping"}`): the pong is recognised by its prefix, never parsed as data; unanswered ones replace the socket', async () => {
    const s = (server = await startServer((t) => (t === '{"op":"ping"}' ? '{"success":true,"ret_msg":"pong","conn_id":"c-1","op":"ping"}' : undefined)));
    const x = startPool(s.url, { kind: 'client-json', intervalMs: 100, ping: '{"op":"ping"}', pongPrefix: '{"success":true,"ret_msg":"pong"', maxFrameBytes: 256 });
    pool = x.pool;
    await x.pool.start();
    await waitFor('three answered pings', () => s.texts.filter((t) => t === '{"op":"ping"}').length >= 3);
    expect(x.candles()).toBeGreaterThan(0);
    expect(x.pool.stats().parseErrors).toBe(0);
    expect(disconnects(x.events)).toEqual([]);

    s.answerPings = false;
    s.sendData = false;
    await waitFor('the socket replaced for unanswered pings', () => disconnects(x.events).length > 0);
    expect(disconnects(x.events)[0]?.reason).toMatch(/2 pings in a row unanswered within 200 ms/);
  });

  it('server JSON pings (BingX `{"ping":…}`): each is answered with its own id, keeps the socket alive without data, and we send no pings', async () => {
    const s = (server = await startServer(() => undefined));
    s.sendData = false;
    s.serverPings = 'json';
    const answer = (frame: Buffer): string => frame.toString('utf8').replace('{"ping":', '{"pong":');
    const x = startPool(s.url, { kind: 'server-json', pingPrefix: '{"ping":', answer, maxFrameBytes: 256 }, { CONNECTOR_PING_TIMEOUT_MS: 600 });
    pool = x.pool;
    await x.pool.start();
    // Well past the liveness deadline (600 ms) with nothing but server pings: still the first socket.
    await waitFor('answers to 25 server pings', () => s.texts.filter((t) => t.startsWith('{"pong":')).length >= 25);
    const pongs = s.texts.filter((t) => t.startsWith('{"pong":'));
    expect(pongs.slice(0, 3)).toEqual(['{"pong":"1","time":"2026-01-01T00:00:00Z"}', '{"pong":"2","time":"2026-01-01T00:00:00Z"}', '{"pong":"3","time":"2026-01-01T00:00:00Z"}']);
    expect(disconnects(x.events)).toEqual([]);
    expect(s.connections).toBe(1);
    expect(x.pool.stats().parseErrors).toBe(0);
    expect(s.texts.filter((t) => !t.startsWith('{"pong":') && !t.startsWith('{"op":"sub"'))).toEqual([]);
    expect(s.pings).toBe(0);

    // The server falls silent: the liveness deadline replaces the socket.
    s.serverPings = 'none';
    await waitFor('dropped for silence', () => disconnects(x.events).length > 0);
    expect(disconnects(x.events)[0]?.reason).toMatch(/liveness deadline 600 ms/);
  });

  it('server WebSocket pings (Binance): ws answers each, they keep the socket alive without data, and no text pings are sent', async () => {
    const s = (server = await startServer(() => undefined));
    s.sendData = false;
    s.serverPings = 'ws';
    const x = startPool(s.url, { kind: 'ws-ping' }, { CONNECTOR_PING_TIMEOUT_MS: 600 });
    pool = x.pool;
    await x.pool.start();
    await waitFor('25 pongs from ws', () => s.pongs >= 25);
    expect(disconnects(x.events)).toEqual([]);
    expect(s.connections).toBe(1);
    expect(s.texts.filter((t) => !t.startsWith('{"op":"sub"'))).toEqual([]);
  });
});
