/**
 * Issue 12, point 3 (rate part): the inbound limit counts frames when they arrive, tolerates the
 * burst a busy event loop makes of an honest client's frames, and counts every inbound frame but the
 * pongs that answer our own pings.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { takeToken, type Bucket } from '../../src/relay/rate.ts';
import { ManualClock, TestClient, cleanup, startRelay, waitFor } from './helpers.ts';

afterEach(cleanup);

/**
 * An honest client in its own thread: after 'go' it sends one LIST_SUBSCRIPTIONS every 250 ms (4/s,
 * under the 5/s limit), raises a shared flag once all are sent, and reports the replies it got and
 * whether it was closed. Its own event loop keeps sending while the test blocks the relay's thread.
 */
const HONEST_CLIENT = `
const { workerData, parentPort } = require('node:worker_threads');
const { createRequire } = require('node:module');
const { WebSocket } = createRequire(workerData.base)('ws');
const flag = new Int32Array(workerData.flag);
const ws = new WebSocket(workerData.url);
let replies = 0;
ws.on('message', () => {
  replies++;
  if (replies === workerData.count) parentPort.postMessage({ replies, closed: null });
});
ws.on('close', (code) => parentPort.postMessage({ replies, closed: code }));
ws.on('open', () => parentPort.postMessage('open'));
parentPort.on('message', () => {
  let sent = 0;
  const tick = () => {
    ws.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: sent }));
    sent++;
    if (sent < workerData.count) setTimeout(tick, 250);
    else { Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); }
  };
  tick();
});
`;

type WorkerReport = 'open' | { replies: number; closed: number | null };

describe('relay rate limit', () => {
  it('lets through an honest 4/s client whose frames queued behind a 2-second event-loop stall', async () => {
    const h = await startRelay();
    const count = 8; // 2 s at 4/s: more than a fixed 5-per-second window allows, all read at once
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(HONEST_CLIENT, { eval: true, workerData: { url: `${h.url}/ws`, base: import.meta.url, flag: flag.buffer, count } });
    try {
      const reports: WorkerReport[] = [];
      let notify: (() => void) | undefined;
      worker.on('message', (m: WorkerReport) => {
        reports.push(m);
        notify?.();
      });
      const nextReport = async (): Promise<WorkerReport> => {
        while (reports.length === 0) await new Promise<void>((r) => (notify = r));
        return reports.shift()!;
      };
      expect(await nextReport()).toBe('open');
      worker.postMessage('go');
      // Block the relay's thread (as a long GC pause or a CPU-bound burst would) until the client has
      // sent everything: its frames wait in the kernel and are read together when the loop resumes.
      expect(Atomics.wait(flag, 0, 0, 20_000)).not.toBe('timed-out');
      expect(await nextReport()).toEqual({ replies: count, closed: null });
      expect(h.events.some((e) => e.type === 'relay.client.close')).toBe(false);
    } finally {
      await worker.terminate();
    }
  });

  it('still closes a client with 1008 "Too many requests" past its burst and its sustained 5/s', async () => {
    const clock = new ManualClock();
    const h = await startRelay({}, { clock });
    const c = await TestClient.open(`${h.url}/ws`);
    // A full bucket holds 2 s worth: 10 frames at once are answered.
    for (let i = 0; i < 10; i++) expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: i })).toEqual({ result: [], id: i });
    // One second refills five.
    clock.advance(1000);
    for (let i = 10; i < 15; i++) expect(await c.request({ method: 'LIST_SUBSCRIPTIONS', id: i })).toEqual({ result: [], id: i });
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 15 });
    expect(await c.closed).toEqual({ code: 1008, reason: 'Too many requests' });
    expect(c.messages).toHaveLength(0);
    expect(h.relay.stats()).toMatchObject({ rateLimited: 1 });
  });

  it('counts unsolicited pongs: a client flooding pongs is closed with 1008', async () => {
    const clock = new ManualClock();
    const h = await startRelay({}, { clock });
    const c = await TestClient.open(`${h.url}/ws`);
    for (let i = 0; i < 11; i++) c.ws.pong();
    await waitFor(() => h.events.some((e) => e.type === 'relay.client.close' && e.code === 1008 && e.reason === 'Too many requests'), 3000, 'the pong flood to be cut');
    expect((await c.closed).code).toBe(1008);
  });

  it('counts client pings: eleven at once is one past the burst', async () => {
    const clock = new ManualClock();
    const h = await startRelay({}, { clock });
    const c = await TestClient.open(`${h.url}/ws`);
    let pongs = 0;
    c.ws.on('pong', () => pongs++);
    for (let i = 0; i < 11; i++) c.ws.ping();
    expect(await c.closed).toEqual({ code: 1008, reason: 'Too many requests' });
    expect(pongs).toBe(10);
    await waitFor(() => h.relay.stats().rateLimited === 1 && h.relay.stats().clients === 0, 3000, 'the server side of the close');
  });

  it('does not count the pongs that answer its own pings, whatever the ping interval', async () => {
    const clock = new ManualClock();
    // 1 message/s (a 2-frame burst) against 30 pings: counted pongs would cut the client.
    const h = await startRelay({ pingIntervalMs: 100, clientTimeoutMs: 60_000, maxMessagesPerSecond: 1 }, { clock });
    const c = await TestClient.open(`${h.url}/ws`);
    let pings = 0;
    c.ws.on('ping', () => pings++);
    for (let i = 1; i <= 30; i++) {
      clock.advance(100);
      await waitFor(() => pings >= i, 3000, `ping ${i}`);
    }
    expect(await c.request({ method: 'GET_PROPERTY', params: ['combined'], id: 1 })).toEqual({ result: false, id: 1 });
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect(h.relay.stats().clients).toBe(1);
  });
});

describe('token bucket', () => {
  it('refills by elapsed time up to two seconds worth and never goes negative', () => {
    const b: Bucket = { tokens: 10, tokensAt: 0 };
    for (let i = 0; i < 10; i++) expect(takeToken(b, 0, 5)).toBe(true);
    expect(takeToken(b, 0, 5)).toBe(false);
    expect(takeToken(b, 100, 5)).toBe(false); // half a token
    expect(takeToken(b, 200, 5)).toBe(true); // one token after 200 ms at 5/s
    expect(takeToken(b, 60_000, 5)).toBe(true); // a long idle spell refills to the burst, not beyond
    expect(b.tokens).toBe(9);
    expect(takeToken(b, 50_000, 5)).toBe(true); // a stamp from the past refills nothing
    expect(b.tokens).toBe(8);
  });
});
