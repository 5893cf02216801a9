import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { BinanceSimulator } from '../../src/venues/binance/simulator/server.ts';
import { klineAt } from '../../src/venues/binance/simulator/klines.ts';
import { RestClient } from '../../src/upstream/rest.ts';
import { binanceSpot } from '../../src/venues/binance/spot.ts';
import { EnvSchema } from '../../src/config/schema.ts';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { StreamRegistry } from '../../src/core/streams.ts';
import { openTimeAt } from '../../src/core/intervals.ts';

const MIN = 60_000;
let sim: BinanceSimulator;
let rest: RestClient | undefined;

beforeEach(async () => {
  sim = await BinanceSimulator.start();
});
afterEach(async () => {
  await rest?.close();
  rest = undefined;
  await sim.close();
});

function client(extra: Record<string, unknown> = {}) {
  const config = EnvSchema.parse({ CONNECTOR_BINANCE_REST_URL: sim.restUrl, ...extra });
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const registry = new StreamRegistry();
  const btc1m = registry.register('binance', 'btcusdt@kline_1m', 'BTCUSDT', '1m');
  const btc1s = registry.register('binance', 'btcusdt@kline_1s', 'BTCUSDT', '1s');
  rest = new RestClient({ config, venue: binanceSpot, restUrl: config.venues[0]!.restUrl, status, log: pino({ level: 'silent' }), retryBaseMs: 10 });
  return { rest, events, btc1m, btc1s };
}

describe('Binance REST backfill', () => {
  it('returns exactly the closed candles of a range, byte-identical to what the stream sends', async () => {
    const { rest, btc1m } = client();
    const now = Date.now();
    const to = openTimeAt('1m', now); // the current candle is still forming: excluded
    const from = to - 5 * MIN;
    const got = await rest.fetchClosed(btc1m, from, to);
    expect(got.map((c) => c.openTime)).toEqual([0, 1, 2, 3, 4].map((i) => from + i * MIN));
    for (const c of got) {
      const k = klineAt('btcusdt', '1m', c.openTime);
      expect([c.open, c.high, c.low, c.close, c.volume, c.quoteVolume, c.takerBuyBaseVolume, c.takerBuyQuoteVolume, c.trades, c.closeTime]).toEqual([
        k.o, k.h, k.l, k.c, k.v, k.q, k.V, k.Q, k.n, k.T,
      ]);
      expect(c).toMatchObject({ closed: true, source: 'rest', firstTradeId: -1, lastTradeId: -1, ignore: '0', raw: undefined });
    }
  });

  it('pages through ranges longer than 1000 rows and never returns the forming candle', async () => {
    const { rest, btc1s } = client();
    const now = Date.now();
    const to = openTimeAt('1s', now) + 5000; // reaches past "now": the open candle and future must be cut
    const from = to - 2600 * 1000;
    const got = await rest.fetchClosed(btc1s, from, to);
    const closedUntil = openTimeAt('1s', Date.now());
    expect(got.length).toBeGreaterThanOrEqual(2594);
    expect(got.every((c, i) => c.openTime === from + i * 1000)).toBe(true);
    expect(got.at(-1)!.closeTime).toBeLessThan(closedUntil + 1000);
    expect(sim.counters.restRequests).toBeGreaterThanOrEqual(3);
  });

  it('skips the holes Binance has instead of inventing them', async () => {
    const { rest, btc1m } = client();
    const to = openTimeAt('1m', Date.now());
    const from = to - 6 * MIN;
    sim.faults.hole('btcusdt', '1m', from + 2 * MIN, from + 4 * MIN);
    const got = await rest.fetchClosed(btc1m, from, to);
    expect(got.map((c) => (c.openTime - from) / MIN)).toEqual([0, 1, 4, 5]);
  });

  it('honours 429 Retry-After and then succeeds', async () => {
    const { rest, btc1m, events } = client();
    sim.faults.restErrors(1, 429, 1);
    const to = openTimeAt('1m', Date.now());
    const started = Date.now();
    const got = await rest.fetchClosed(btc1m, to - 2 * MIN, to);
    expect(got).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(events.find((e) => e.type === 'ratelimit')).toMatchObject({ kind: '429', retryAfterMs: 1000 });
    expect(rest.stats().rateLimited).toBe(1);
  });

  it('treats 418 as a ban: records when it ends and waits it out before the next request', async () => {
    const { rest, btc1m, events } = client();
    sim.faults.restErrors(1, 418, 1);
    const to = openTimeAt('1m', Date.now());
    const pending = rest.fetchClosed(btc1m, to - MIN, to);
    await new Promise((r) => setTimeout(r, 200));
    expect(rest.stats().bannedUntil).toBeGreaterThan(Date.now());
    const got = await pending;
    expect(got).toHaveLength(1);
    expect(rest.stats().bannedUntil).toBeUndefined();
    expect(events.find((e) => e.type === 'ratelimit')).toMatchObject({ kind: '418' });
    expect(sim.counters.rest418).toBe(1);
  });

  it('reads X-MBX-USED-WEIGHT-1M and keeps under its own weight budget', async () => {
    const { rest, btc1m } = client({ CONNECTOR_REST_MAX_WEIGHT_PER_MINUTE: 6000 });
    const to = openTimeAt('1m', Date.now());
    await rest.fetchClosed(btc1m, to - MIN, to);
    await rest.fetchClosed(btc1m, to - MIN, to);
    expect(rest.stats().usedWeight1m).toBe(sim.counters.restWeightUsedMax1m);
    expect(rest.stats().usedWeight1m).toBeGreaterThanOrEqual(4);
  });

  it('retries 5xx, then opens its circuit breaker after consecutive failures', async () => {
    const { rest, btc1m, events } = client({ CONNECTOR_CIRCUIT_BREAKER_FAILURE_THRESHOLD: 3 });
    sim.faults.restErrors(100, 500);
    const to = openTimeAt('1m', Date.now());
    await expect(rest.fetchClosed(btc1m, to - MIN, to)).rejects.toThrow(/500|breaker/);
    await expect(rest.fetchClosed(btc1m, to - MIN, to)).rejects.toThrow(/breaker is open/);
    expect(events.filter((e) => e.type === 'breaker')).toEqual([{ type: 'breaker', name: 'binance.rest', from: 'closed', to: 'open' }]);
    expect(rest.stats().breaker).toBe('open');
  });

  it('gives up on a 4xx it cannot fix without retrying', async () => {
    const { rest } = client();
    const bad = new StreamRegistry().register('binance', 'x@kline_1m', 'B@D', '1m');
    const requests = sim.counters.restRequests;
    await expect(rest.fetchClosed(bad, 0, MIN)).rejects.toThrow(/400/);
    expect(sim.counters.restRequests - requests).toBe(1);
  });
});
