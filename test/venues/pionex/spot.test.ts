/**
 * The Pionex spot adapter (exchanges.md §4; pionex-official/pionex-open-api openapi.yaml): its stream
 * names, its klines page (endTime paging, limit ≤ 500, `1M` = one minute), its REST rows as canonical
 * candles with `null` for what Pionex does not publish, and its configuration (symbol form, the
 * intervals it has, the streams one IP can poll).
 */
import { describe, expect, it } from 'vitest';
import { pionexSpot, PIONEX_INTERVALS } from '../../../src/venues/pionex/spot.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { registerVenueStreams } from '../../../src/upstream/venue.ts';
import { maxPolledStreams } from '../../../src/upstream/poll-budget.ts';
import { klinePayload } from '../../../src/relay/protocol.ts';
import { issuesOf, load } from '../../config/helpers.ts';

/** The docs' example answer (GitBook restful/markets/get-klines), as Pionex sends it. */
const DOC_BODY = {
  result: true,
  data: { klines: [{ time: 1691649240000, open: '1851.27', close: '1851.32', high: '1851.32', low: '1851.27', volume: '0.542' }] },
  timestamp: 1691649271544,
};

function streams(symbols: string[], intervals: Parameters<typeof pionexSpot.streams>[1]) {
  return registerVenueStreams(new StreamRegistry(), pionexSpot, symbols, intervals);
}

describe('Pionex spot adapter', () => {
  it('names its streams pionex:<symbol lowercased>@kline_<canonical interval> and keeps Pionex’s own spelling for the wire', () => {
    const [a, b] = streams(['BTC_USDT'], ['1m', '1h']);
    expect(a).toMatchObject({ venue: 'pionex', name: 'pionex:btc_usdt@kline_1m', symbol: 'BTC_USDT', interval: '1m', nativeInterval: '1M', topic: 'BTC_USDT@1M' });
    expect(b).toMatchObject({ name: 'pionex:btc_usdt@kline_1h', nativeInterval: '60M' });
    // `1M` is one minute on Pionex: there is no month, and no canonical 1M.
    expect(PIONEX_INTERVALS['1M']).toBeUndefined();
    expect(Object.values(PIONEX_INTERVALS)).toEqual(['1M', '5M', '15M', '30M', '60M', '4H', '8H', '12H', '1D']);
  });

  it('asks for the newest rows up to endTime (no startTime on Pionex), at most 500, weight 1', () => {
    const [s] = streams(['BTC_USDT'], ['1m']);
    const page = pionexSpot.rest.page(s!, 1_700_000_000_000, 1_700_000_120_000, 3);
    expect(page).toEqual({ path: '/api/v1/market/klines?symbol=BTC_USDT&interval=1M&endTime=1700000120000&limit=3', limit: 3, weight: 1 });
    expect(pionexSpot.rest.page(s!, 0, 1_700_000_120_000, 5000).limit).toBe(500);
    expect(pionexSpot.rest.order).toBe('newest-first');
  });

  it('reads the docs’ example answer as a closed REST candle, and the relay writes null for what Pionex does not publish', () => {
    const [s] = streams(['ETH_USDT'], ['1m']);
    const rows = pionexSpot.rest.parse(DOC_BODY, s!, 1_691_649_271_544, 5);
    expect(rows).toEqual([
      {
        stream: s,
        openTime: 1691649240000,
        closeTime: 1691649299999,
        eventTime: 1_691_649_271_544,
        closed: true,
        open: '1851.27',
        high: '1851.32',
        low: '1851.27',
        close: '1851.32',
        volume: '0.542',
        source: 'rest',
        raw: undefined,
        receivedAt: 5,
      },
    ]);
    if (typeof rows === 'string') throw new Error(rows);
    const event = JSON.parse(klinePayload(rows[0]!, 1_691_649_300_000).toString('utf8')) as { s: string; k: Record<string, unknown> };
    expect(event.s).toBe('ETH_USDT');
    expect(event.k).toMatchObject({ s: 'ETH_USDT', i: '1m', o: '1851.27', c: '1851.32', v: '0.542', x: true, f: null, L: null, n: null, q: null, V: null, Q: null, B: null });
  });

  it('says what is wrong with a body that is not its klines answer, never throwing', () => {
    const [s] = streams(['BTC_USDT'], ['5m']);
    expect(pionexSpot.rest.parse({ result: false, code: 'MARKET_INVALID_SYMBOL', message: 'Invalid symbol' }, s!, 0, 0)).toBe('/api/v1/market/klines refused: MARKET_INVALID_SYMBOL Invalid symbol');
    expect(pionexSpot.rest.parse('garbage', s!, 0, 0)).toMatch(/^unexpected \/api\/v1\/market\/klines body/);
    expect(pionexSpot.rest.parse({ result: true, data: { klines: [{ time: 1, open: 1 }] } }, s!, 0, 0)).toMatch(/^unexpected/);
    // A row off the 5-minute grid is not a candle of this stream.
    const off = { result: true, data: { klines: [{ ...DOC_BODY.data.klines[0]!, time: 1691649240000 }] } };
    expect(pionexSpot.rest.parse(off, s!, 0, 0)).toBe('/api/v1/market/klines row time 1691649240000 is not a 5M boundary');
  });

  it('closes the REST gate on a 429 as a ban of 60 s plus margin, growing 10 s per request inside it, and paces under 10 requests/s', () => {
    expect(pionexSpot.rest.gateStatuses).toEqual({ 429: 61_000 });
    expect(pionexSpot.rest.banStatuses).toEqual([429]);
    expect(pionexSpot.rest.repeatPenaltyMs).toBe(10_000);
    expect(pionexSpot.rest.requestsPerSecond).toBeLessThan(10);
    expect(pionexSpot.poll.pollsPerSecond).toBeLessThan(pionexSpot.rest.requestsPerSecond ?? 0);
  });
});

describe('Pionex in the configuration', () => {
  it('takes native BASE_QUOTE symbols in any case, canonical intervals, and Pionex’s endpoints by default', () => {
    const { config } = load({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: 'btc_usdt,ETH_USDT', CONNECTOR_PIONEX_INTERVALS: '1m,1h,1d' });
    expect(config.venues).toEqual([
      { id: 'pionex', symbols: ['BTC_USDT', 'ETH_USDT'], intervals: ['1m', '1h', '1d'], wsUrl: 'wss://ws.pionex.com/wsPub', restUrl: 'https://api.pionex.com' },
    ]);
  });

  it('refuses an interval Pionex lacks and a symbol in another venue’s form, naming the variable', () => {
    const intervals = issuesOf({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: 'BTC_USDT', CONNECTOR_PIONEX_INTERVALS: '1m,3m,1w' });
    expect(intervals).toHaveLength(1);
    expect(intervals[0]).toMatch(/^CONNECTOR_PIONEX_INTERVALS="1m,3m,1w" \(environment\): expected Pionex spot kline intervals: 1m, 5m, 15m, 30m, 1h, 4h, 8h, 12h, 1d/);
    // Pionex's own spelling is not the canonical one.
    expect(issuesOf({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: 'BTC_USDT', CONNECTOR_PIONEX_INTERVALS: '60M' })[0]).toMatch(/^CONNECTOR_PIONEX_INTERVALS="60M"/);
    const symbols = issuesOf({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: 'BTC-USDT' });
    expect(symbols[0]).toMatch(/^CONNECTOR_PIONEX_SYMBOLS="BTC-USDT" \(environment\): symbols are BASE_QUOTE/);
  });

  it('says CONNECTOR_PIONEX_WS_URL does nothing (no kline WebSocket), and refuses it in production', () => {
    const { warnings } = load({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: 'BTC_USDT', CONNECTOR_PIONEX_WS_URL: 'wss://ws.pionex.com/wsPub' });
    expect(warnings).toContain('CONNECTOR_PIONEX_WS_URL is ignored: pionex has no kline WebSocket (its closed candles are polled from CONNECTOR_PIONEX_REST_URL)');
    const prod = issuesOf({ CONNECTOR_ENV: 'production', CONNECTOR_RELAY_AUTH: 'none', CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: 'BTC_USDT', CONNECTOR_PIONEX_WS_URL: 'wss://ws.pionex.com/wsPub' });
    expect(prod).toEqual([expect.stringMatching(/^CONNECTOR_PIONEX_WS_URL \(environment\): pionex has no kline WebSocket .*, so this does nothing; with CONNECTOR_ENV=production this is an error$/)]);
    expect(load({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: 'BTC_USDT' }).warnings.filter((w) => w.includes('PIONEX'))).toEqual([]);
  });

  it('refuses more streams than one IP can poll once per candle, saying how many each interval carries', () => {
    // 6 polls/s: 360 one-minute streams fit exactly, 361 do not.
    expect(maxPolledStreams(pionexSpot.poll.pollsPerSecond, '1m')).toBe(360);
    const fits = Array.from({ length: 360 }, (_, i) => `S${i}_USDT`).join(',');
    expect(load({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: fits }).config.venues[0]?.symbols).toHaveLength(360);
    const over = issuesOf({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: `${fits},X_USDT` });
    expect(over).toHaveLength(1);
    expect(over[0]).toMatch(/^CONNECTOR_PIONEX_SYMBOLS=.*: 361 streams need 6.02 REST polls\/s \(one per candle each\), more than the 6\/s .*at most 360 of 1m alone/);
    // 2000 streams (1000 symbols x 1m, 1h) are far past it; the same symbols on 1h and 1d alone fit.
    const many = Array.from({ length: 1000 }, (_, i) => `S${i}_USDT`).join(',');
    expect(issuesOf({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: many, CONNECTOR_PIONEX_INTERVALS: '1m,1h' })[0]).toMatch(/2000 streams need 16.94 REST polls\/s.*360 of 1m, 21600 of 1h alone/);
    expect(load({ CONNECTOR_VENUES: 'pionex', CONNECTOR_PIONEX_SYMBOLS: many, CONNECTOR_PIONEX_INTERVALS: '1h,1d' }).config.venues[0]?.intervals).toEqual(['1h', '1d']);
  });
});
