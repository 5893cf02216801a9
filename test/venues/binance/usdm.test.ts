/**
 * The Binance USD-M adapter (exchanges.md §6) next to spot's: its relay names carry the venue, its
 * socket URL is the `/market` route's combined stream, its REST pages are `/fapi/v1/klines` at the
 * cheapest weight that covers the gap, and its frames (spot's kline event) go through the shared
 * parser's fast path to its own streams with their bytes kept for the relay.
 */
import { describe, expect, it } from 'vitest';
import { StatusStream } from '../../../src/core/status.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { isCandle, registerVenueStreams } from '../../../src/upstream/venue.ts';
import { KlineFrameParser } from '../../../src/venues/binance/protocol.ts';
import { binanceSpot } from '../../../src/venues/binance/spot.ts';
import { binanceUsdm } from '../../../src/venues/binance/usdm.ts';

const EVENT = '{"e":"kline","E":1700000061000,"s":"BTCUSDT","k":{"t":1700000040000,"T":1700000099999,"s":"BTCUSDT","i":"1m","f":100,"L":200,"o":"42000.10","c":"42010.00","h":"42020.50","l":"41990.00","v":"12.345","n":101,"x":false,"q":"518000.12","V":"6.1","Q":"256000.5","B":"0"}}';

describe('Binance USD-M adapter', () => {
  it('names its relay streams <venue>:<symbol>@kline_<interval> and keeps Binance’s own names upstream; spot keeps Binance’s names on the relay', () => {
    const registry = new StreamRegistry();
    const usdm = registerVenueStreams(registry, binanceUsdm, ['btcusdt'], ['1m', '1h']);
    const spot = registerVenueStreams(registry, binanceSpot, ['btcusdt'], ['1m']);
    expect(usdm.map((r) => [r.venue, r.name, r.topic, r.symbol, r.interval])).toEqual([
      ['binance-usdm', 'binance-usdm:btcusdt@kline_1m', 'btcusdt@kline_1m', 'BTCUSDT', '1m'],
      ['binance-usdm', 'binance-usdm:btcusdt@kline_1h', 'btcusdt@kline_1h', 'BTCUSDT', '1h'],
    ]);
    expect(spot.map((r) => [r.venue, r.name, r.topic])).toEqual([['binance', 'btcusdt@kline_1m', 'btcusdt@kline_1m']]);
    expect(registry.byName('btcusdt@kline_1m')).toBe(spot[0]);
    expect(registry.byName('binance-usdm:btcusdt@kline_1m')).toBe(usdm[0]);
  });

  it('connects to the /market route’s combined stream and subscribes in frames under 4 KB', () => {
    const { url, carried } = binanceUsdm.ws.connectUrl('wss://fstream.binance.com/market', ['btcusdt@kline_1m', 'ethusdt@kline_1m']);
    expect(url).toBe('wss://fstream.binance.com/market/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m');
    expect(carried).toBe(2);
    const topics = Array.from({ length: 600 }, (_, i) => `sym${i}usdt@kline_1m`);
    const batches = binanceUsdm.ws.subscribeBatches(topics);
    expect(batches.flat()).toEqual(topics);
    for (const b of batches) expect(binanceUsdm.ws.subscribeFrame(b, 4294967295).length).toBeLessThanOrEqual(4000);
    expect(binanceUsdm.ws.maxStreamsPerConnection).toBe(1024);
    expect(binanceUsdm.ws.controlBudgetPerSecond).toBeLessThan(10);
  });

  it('asks /fapi/v1/klines for the cheapest page that covers the gap (weight 1 below 100 rows … 10 above 1000)', () => {
    const [ref] = registerVenueStreams(new StreamRegistry(), binanceUsdm, ['btcusdt'], ['1m']);
    const page = (wanted: number) => binanceUsdm.rest.page(ref!, 0, 60_000, wanted);
    expect(page(3)).toEqual({ path: '/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime=0&endTime=60000&limit=99', limit: 99, weight: 1 });
    expect([page(100), page(600), page(1001), page(5000)].map((p) => [p.limit, p.weight])).toEqual([
      [499, 2],
      [1000, 5],
      [1500, 10],
      [1500, 10],
    ]);
    expect(binanceUsdm.rest.weightLimitPerMinute).toBe(2400);
    // Spot keeps its single page shape: weight 2 whatever the limit, so always 1000 rows.
    const [spotRef] = registerVenueStreams(new StreamRegistry(), binanceSpot, ['btcusdt'], ['1m']);
    expect(binanceSpot.rest.page(spotRef!, 0, 60_000, 3)).toMatchObject({ path: '/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=0&endTime=60000&limit=1000', weight: 2 });
  });

  it('parses its frames on the shared fast path into its own streams, keeping the event bytes for the relay', () => {
    const registry = new StreamRegistry();
    registerVenueStreams(registry, binanceSpot, ['btcusdt'], ['1m']);
    const [ref] = registerVenueStreams(registry, binanceUsdm, ['btcusdt'], ['1m']);
    const parser = new KlineFrameParser({ venue: 'binance-usdm', registry, status: new StatusStream(), clock: { now: () => 0, monotonic: () => 0 } });
    const out = parser.parse(Buffer.from(`{"stream":"btcusdt@kline_1m","data":${EVENT}}`), 7);
    expect(isCandle(out)).toBe(true);
    if (!isCandle(out)) return;
    expect(out.stream).toBe(ref);
    expect(out.raw?.toString()).toBe(EVENT);
    expect({ open: out.open, trades: out.trades, quoteVolume: out.quoteVolume }).toEqual({ open: '42000.10', trades: 101, quoteVolume: '518000.12' });
    expect(parser.slowPath).toBe(0);
  });
});
