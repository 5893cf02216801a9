/**
 * Issue 12, point 1: every byte the relay queues for a client counts toward its bound, whatever
 * produced it (data, replies, errors, pongs), and echoed names are short and escaped once.
 * Clients that "stop reading" have their TCP socket paused, so backpressure builds in the kernel and
 * then in the relay's socket buffer, as with a real consumer that stalls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BTC, MANY, TestClient, cleanup, rawText, startRelay, waitFor, wsCandle, type Harness } from './helpers.ts';

afterEach(cleanup);

function cutAsSlow(h: Harness): boolean {
  return h.events.some((e) => e.type === 'relay.slow-consumer');
}

/** Call `send` until the relay cuts a slow consumer or `max` calls, yielding to I/O so the relay reads. */
async function pumpUntilCut(h: Harness, send: () => void, max: number): Promise<void> {
  for (let i = 0; i < max && !cutAsSlow(h); i++) {
    send();
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 0));
  }
}

describe('relay: every queued byte counts toward the client bound', () => {
  it('cuts a client that stops reading while its control replies pile up, though no data is delivered to it', async () => {
    // A generous message rate: this test is about bytes, not the rate limit.
    const h = await startRelay({ maxBufferedBytes: 256 * 1024, closeTimeoutMs: 300, maxMessagesPerSecond: 1_000_000 });
    const c = await TestClient.open(`${h.url}/ws`);
    const names = MANY.slice(0, 1000).map((s) => s.name);
    expect(await c.request({ method: 'SUBSCRIBE', params: names, id: 1 })).toEqual({ result: null, id: 1 });
    const good = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    c.stopReading();
    // Each answer lists 1000 names (~22 KB); bounded at 2000 requests (~44 MB of replies).
    await pumpUntilCut(h, () => { c.send({ method: 'LIST_SUBSCRIPTIONS', id: 2 }); }, 2000);
    await waitFor(() => cutAsSlow(h), 10_000, 'the client to be cut as a slow consumer');
    const slow = h.events.find((e) => e.type === 'relay.slow-consumer');
    expect(slow).toMatchObject({ limit: 'client' });
    if (slow?.type === 'relay.slow-consumer') expect(slow.bufferedBytes).toBeLessThanOrEqual(256 * 1024);
    // Close queued behind the unread backlog, destroyed after closeTimeoutMs.
    await waitFor(
      () => h.events.some((e) => e.type === 'relay.client.close' && e.code === 1008 && e.reason === 'slow consumer'),
      5000,
      'the stuck client to be destroyed',
    );
    // Nobody else noticed.
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await good.next()).toBe(rawText(b));
    expect(h.relay.stats()).toMatchObject({ clients: 1, slowConsumers: 1 });
  });

  it('cuts an unsubscribed client that stops reading while pinging: the pongs it is owed count', async () => {
    const h = await startRelay({ maxBufferedBytes: 64 * 1024, closeTimeoutMs: 300, maxMessagesPerSecond: 1_000_000 });
    const c = await TestClient.open(`${h.url}/ws`);
    c.stopReading();
    const payload = Buffer.alloc(125, 0x61); // the largest control payload: 127-byte pongs
    // Bounded at 200,000 pings (~25 MB of pongs).
    await pumpUntilCut(h, () => { c.ws.ping(payload); }, 200_000);
    await waitFor(() => cutAsSlow(h), 10_000, 'the pinging client to be cut as a slow consumer');
    await waitFor(() => h.relay.stats().clients === 0, 5000, 'the pinging client to be destroyed');
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.client.close', code: 1008, reason: 'slow consumer' }));
  });
});

describe('relay: echoed stream names', () => {
  it('echoes at most 100 characters of an unserved stream name, escaped once (64 KB in, a short reply out)', async () => {
    const h = await startRelay();
    const c = await TestClient.open(`${h.url}/ws`);
    c.send({ method: 'SUBSCRIBE', params: ['x'.repeat(60_000)], id: 1 });
    const text = await c.next();
    expect(text.length).toBeLessThan(250);
    expect(JSON.parse(text)).toEqual({
      error: { code: 2, msg: `Invalid request: stream "${'x'.repeat(99)}…" is not served by this relay` },
      id: 1,
    });
    // Quotes and backslashes in the name are escaped by the reply's own JSON encoding only.
    c.send({ method: 'SUBSCRIBE', params: ['a"b\\c'], id: 2 });
    const quoted = await c.next();
    expect(quoted).toBe('{"error":{"code":2,"msg":"Invalid request: stream \\"a\\"b\\\\c\\" is not served by this relay"},"id":2}');
    // Cut on a character boundary: no lone surrogate from a split emoji.
    c.send({ method: 'SUBSCRIBE', params: ['😀'.repeat(200)], id: 3 });
    const emoji = (JSON.parse(await c.next()) as { error: { msg: string } }).error.msg;
    expect(/[\ud800-\udbff](?![\udc00-\udfff])/.test(emoji)).toBe(false); // no lone high surrogate
    expect(emoji).toBe(`Invalid request: stream "${'😀'.repeat(49)}…" is not served by this relay`);
  });
});
