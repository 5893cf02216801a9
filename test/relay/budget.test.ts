/**
 * Issue 12, point 2: a relay-wide budget for unsent bytes. Past it the largest backlogs are cut
 * first; above its low watermark (or under heap pressure) new clients get 503; a configuration whose
 * worst case cannot fit the heap is reported at start.
 * Stuck clients are raw TCP peers that complete the upgrade and never read again; the loopback
 * kernel buffers absorb a few MB each before the relay's own buffer for them starts to grow.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { StreamRef } from '../../src/core/candle.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { BufferLedger } from '../../src/relay/budget.ts';
import { BTC, ETH, TestClient, cleanup, rawText, startRelay, stuckClient, upgradeStatus, waitFor, wsCandle, type Harness } from './helpers.ts';

afterEach(cleanup);

const MiB = 1024 * 1024;
const PAD = `,"pad":"${'x'.repeat(16 * 1024)}"`;

function portOf(h: Harness): number {
  return Number(new URL(h.url).port);
}

function clientIds(h: Harness): string[] {
  return h.events.flatMap((e) => (e.type === 'relay.client.open' ? [e.clientId] : []));
}

/** Deliver ~16 KiB events on `stream` (yielding to I/O between them) until `done`, at most `max`. */
async function deliverUntil(h: Harness, stream: StreamRef, done: () => boolean, max = 4000): Promise<string[]> {
  const sent: string[] = [];
  for (let i = 0; i < max && !done(); i++) {
    const c = wsCandle(stream, { extra: PAD });
    sent.push(rawText(c));
    h.relay.deliver([c]);
    await new Promise((r) => setImmediate(r));
  }
  return sent;
}

describe('relay-wide buffer budget', () => {
  it('past the budget, cuts the client with the largest backlog first; the others keep receiving', async () => {
    // The per-client bound is far above the budget: only the relay-wide budget can cut anyone here.
    const h = await startRelay({ maxBufferedBytes: 64 * MiB, maxTotalBufferedBytes: 2 * MiB });
    const big = await stuckClient(portOf(h), '/ws/btcusdt@kline_1m/ethusdt@kline_1m');
    const small = await stuckClient(portOf(h), '/ws/btcusdt@kline_1m');
    const good = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    const [bigId, smallId] = clientIds(h);
    // The big one gets ~512 KiB ahead on ETH, which only it takes...
    await deliverUntil(h, ETH, () => h.relay.stats().bufferedBytes >= 512 * 1024);
    // ...then BTC fills both until the total passes 2 MiB.
    const sent = await deliverUntil(h, BTC, () => h.events.some((e) => e.type === 'relay.slow-consumer'));
    const cuts = h.events.filter((e) => e.type === 'relay.slow-consumer');
    expect(cuts).toEqual([expect.objectContaining({ clientId: bigId, limit: 'relay' })]);
    // Destroyed at once (a close frame would wait behind the bytes to free), so the total is back down.
    await waitFor(() => h.events.some((e) => e.type === 'relay.client.close' && e.clientId === bigId), 3000, 'the big backlog to go');
    expect(h.relay.stats().bufferedBytes).toBeLessThanOrEqual(2 * MiB);
    expect(h.events.some((e) => e.type === 'relay.client.close' && e.clientId === smallId)).toBe(false);
    expect(h.relay.stats()).toMatchObject({ clients: 2, budgetCuts: 1, slowConsumers: 0 });
    await waitFor(() => good.messages.length >= sent.length, 10_000, 'the reading client to get everything');
    expect(good.messages).toEqual(sent);
    big.destroy();
    small.destroy();
  });

  it('answers 503 to new clients while unsent bytes are above 90 % of the budget, and admits them again once under', async () => {
    const h = await startRelay({ maxBufferedBytes: 64 * MiB, maxTotalBufferedBytes: 2 * MiB });
    const stuck: Socket = await stuckClient(portOf(h), '/ws/ethusdt@kline_1m');
    // 16 KiB steps: it passes 1.8 MiB (the low watermark) before reaching 2 MiB (the budget).
    await deliverUntil(h, ETH, () => h.relay.stats().bufferedBytes > 1.8 * MiB);
    expect(h.relay.stats().bufferedBytes).toBeLessThanOrEqual(2 * MiB);
    expect(await upgradeStatus(`${h.url}/ws`)).toBe(503);
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.client.rejected', status: 503, reason: 'relay buffers full' }));
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.budget', state: 'over', cause: 'buffers' }));
    expect(h.relay.stats().budgetCuts).toBe(0); // under the budget itself: nobody is cut
    // The stuck client leaves: its backlog goes with it and the door opens again.
    stuck.destroy();
    await waitFor(() => h.relay.stats().clients === 0, 3000, 'the stuck client to go');
    const c = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.budget', state: 'under' }));
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await c.next()).toBe(rawText(b));
  });

  it('under heap pressure refuses new clients and cuts the largest backlogs, and admits again when it eases', async () => {
    const h = await startRelay({ maxBufferedBytes: 64 * MiB, maxTotalBufferedBytes: 64 * MiB });
    await stuckClient(portOf(h), '/ws/ethusdt@kline_1m');
    const good = await TestClient.open(`${h.url}/ws/btcusdt@kline_1m`);
    const [stuckId] = clientIds(h);
    await deliverUntil(h, ETH, () => h.relay.stats().bufferedBytes >= 256 * 1024);
    h.status.emit({ type: 'heap.pressure', state: 'high', usedBytes: 90, limitBytes: 100 });
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.slow-consumer', clientId: stuckId, limit: 'relay' }));
    expect(await upgradeStatus(`${h.url}/ws`)).toBe(503);
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.client.rejected', status: 503, reason: 'memory pressure' }));
    // The reading client was not behind, so it stays.
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await good.next()).toBe(rawText(b));
    h.status.emit({ type: 'heap.pressure', state: 'normal', usedBytes: 50, limitBytes: 100 });
    await TestClient.open(`${h.url}/ws`);
    expect(h.events).toContainEqual(expect.objectContaining({ type: 'relay.budget', state: 'under', cause: 'heap' }));
  });
});

describe('relay budget at start', () => {
  function capture(): { lines: () => Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
    const raw: string[] = [];
    const log = createLogger('info', {
      write(s: string) {
        raw.push(s);
      },
    });
    return { lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>), log };
  }

  it('defaults the budget to a quarter of the heap limit and reports, in one warning, a worst case that cannot fit the heap', async () => {
    const { lines, log } = capture();
    // Production's figures: 1000 clients x 4 MiB against a ~400 MiB heap.
    const h = await startRelay({ maxClients: 1000, maxBufferedBytes: 4 * MiB }, { log, heapLimitBytes: 400 * MiB });
    expect(h.relay.stats().bufferBudgetBytes).toBe(100 * MiB);
    const warnings = lines().filter((l) => l['level'] === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ event: 'config.warning', heapLimitBytes: 400 * MiB, budgetBytes: 100 * MiB, worstCaseBytes: 4000 * MiB });
    expect(String(warnings[0]!['msg'])).toMatch(/CONNECTOR_RELAY_MAX_CLIENTS x CONNECTOR_RELAY_MAX_BUFFERED_BYTES = 4000 MiB cannot fit the 400 MiB heap/);
  });

  it('says nothing when the worst case fits, and reports an explicit budget beyond half the heap', async () => {
    const quiet = capture();
    await startRelay({ maxClients: 50, maxBufferedBytes: 4 * MiB }, { log: quiet.log, heapLimitBytes: 400 * MiB });
    expect(quiet.lines()).toEqual([]);
    const loud = capture();
    await startRelay({ maxClients: 50, maxBufferedBytes: 4 * MiB, maxTotalBufferedBytes: 300 * MiB }, { log: loud.log, heapLimitBytes: 400 * MiB });
    expect(loud.lines()).toEqual([expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/more than half the 400 MiB heap limit/) as unknown })]);
  });
});

describe('buffer ledger', () => {
  interface Fake {
    accounted: number;
    socket: { writableLength: number; destroyed: boolean };
    closing: boolean;
  }
  const fake = (writableLength: number, closing = false): Fake => ({ accounted: 0, socket: { writableLength, destroyed: false }, closing });

  it('asks for a reconciliation past the limit only once 1 % of the budget was recorded since the last one', () => {
    const ledger = new BufferLedger<Fake>(10_000);
    const a = fake(0);
    expect(ledger.record(a, 9_000)).toBe(false);
    expect(ledger.record(a, 10_050)).toBe(true); // past the limit, 10,050 bytes recorded since the start
    a.socket.writableLength = 9_990; // it drained a little, silently
    expect(ledger.reconcile([a])).toBe(9_990);
    expect(ledger.record(a, 10_010)).toBe(false); // over, but only 20 bytes since: not worth O(clients) yet
    expect(ledger.record(a, 10_090)).toBe(true); // 100 bytes (1 %) since
  });

  it('picks clients already closing first, then the largest backlogs, until the total is at the target', () => {
    const ledger = new BufferLedger<Fake>(1_000);
    const closing = fake(100, true);
    const big = fake(600);
    const mid = fake(300);
    const small = fake(50);
    const all = [small, closing, mid, big];
    expect(ledger.reconcile(all)).toBe(1_050);
    expect(ledger.victims(all, 900, (s) => s.closing)).toEqual([closing, big]);
    expect(ledger.victims(all, 2_000, (s) => s.closing)).toEqual([]);
    big.socket.destroyed = true; // destroyed sockets hold nothing
    expect(ledger.reconcile(all)).toBe(450);
  });
});
