import { describe, expect, it } from 'vitest';
import { openTimeAt } from '../../../../src/core/intervals.ts';
import { TestClient, fastClock, klineEvents, useSimulator, waitUntil } from './helpers.ts';

const { start, connect } = useSimulator();

// The faults every profile shares are tested per profile in shared-faults.test.ts; what stays here is
// spot-only (1s candles) or about the simulator itself.
describe('simulator faults (spot only)', () => {
  it('hole removes candles from the WS stream (closed and open) and from REST', async () => {
    const now = fastClock(10); // 1s candles close every 100 ms
    const s = await start({ now, openUpdateMs: 20 });
    const start0 = openTimeAt('1s', now()) + 3000;
    s.faults.hole('BTCUSDT', '1s', start0, start0 + 3000);
    const c = await connect(`${s.wsUrl}/ws/btcusdt@kline_1s`);
    await waitUntil(() => klineEvents(c).some((e) => e.data.k.x && e.data.k.t >= start0 + 4000), 5000, 'candles after the hole');
    const times = klineEvents(c).map((e) => e.data.k.t);
    expect(times.some((t) => t >= start0 && t < start0 + 3000)).toBe(false);
    const closed = klineEvents(c).filter((e) => e.data.k.x).map((e) => e.data.k.t);
    expect(closed).toContain(start0 - 1000);
    expect(closed).toContain(start0 + 3000);
    const res = await fetch(`${s.restUrl}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime=${start0 - 1000}&limit=3`);
    expect(((await res.json()) as [number][]).map((r) => r[0])).toEqual([start0 - 1000, start0 + 3000, start0 + 4000]);
  });

  it('close() terminates sockets, is idempotent, and refuses later connections', async () => {
    const s = await start();
    const c = await connect(`${s.wsUrl}/ws/btcusdt@kline_1s`);
    const url = s.wsUrl;
    await Promise.all([s.close(), s.close()]);
    await s.close();
    expect((await c.waitClosed()).code).toBe(1006);
    expect(s.sockets()).toEqual([]);
    await expect(TestClient.open(`${url}/ws`)).rejects.toThrow();
  });
});
