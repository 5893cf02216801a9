/** The relay's abuse figures reach /metrics: buffered bytes against the budget, budget cuts, rate-limit cuts, heap pressure. */
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.ts';
import { FakeSources, HEALTH } from '../ops/fake-sources.ts';
import { ManualClock, TestClient, cleanup, startRelay } from './helpers.ts';
import { value } from '../helpers/prometheus.ts';

afterEach(cleanup);

describe('relay metrics', () => {
  it('exports buffered bytes, the budget, rate-limit cuts and heap pressure', async () => {
    const h = await startRelay({ maxTotalBufferedBytes: 8 * 1024 * 1024 }, { clock: new ManualClock() });
    const sources = new FakeSources();
    sources.relay = () => h.relay.stats();
    const metrics = createMetrics({ status: h.status, sources, config: HEALTH, collectDefault: false });
    const c = await TestClient.open(`${h.url}/ws`);
    for (let i = 0; i < 11; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
    await c.closed;
    h.status.emit({ type: 'heap.pressure', state: 'high', usedBytes: 90, limitBytes: 100 });
    const text = await metrics.registry.metrics();
    expect(value(text, 'connector_relay_buffer_budget_bytes')).toBe(8 * 1024 * 1024);
    expect(value(text, 'connector_relay_buffered_bytes')).toBe(0);
    expect(value(text, 'connector_relay_rate_limited_total')).toBe(1);
    expect(value(text, 'connector_relay_budget_cuts_total')).toBe(0);
    expect(value(text, 'connector_heap_pressure')).toBe(1);
    metrics.dispose();
  });
});
