/**
 * The OKX adapter (src/venues/okx/okx.ts, exchanges.md §2): relay names, business-socket topics and
 * subscribe frames under 64 KB, its limits as data, the configuration (symbol form, the UTC bars, an
 * interval OKX lacks is exit 78 naming the variable), and REST pages: `/candles` for the latest bars,
 * `/history-candles` beyond, `after`/`before` exclusive cursors, rows from the docs' example bodies,
 * and a 50011 body read as a refusal.
 */
import { describe, expect, it } from 'vitest';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { registerVenueStreams } from '../../../src/upstream/venue.ts';
import { CANDLES_PATH, HISTORY_PATH, MAX_REQUEST_BYTES, okx } from '../../../src/venues/okx/okx.ts';
import { issuesOf, load } from '../../config/helpers.ts';

const MIN = 60_000;
const NOW = 1_700_000_000_000 - (1_700_000_000_000 % MIN);

function ref(symbol = 'BTC-USDT', interval: '1m' | '1s' | '1M' = '1m') {
  const [r] = registerVenueStreams(new StreamRegistry(), okx, [symbol], [interval]);
  if (r === undefined) throw new Error('no stream');
  return r;
}

describe('OKX adapter', () => {
  it('names spot and perpetual streams okx:<instId lowercased>@kline_<interval>, subscribing the business socket’s candle channels', () => {
    const refs = registerVenueStreams(new StreamRegistry(), okx, ['BTC-USDT', 'BTC-USDT-SWAP'], ['1m', '1h', '6h', '12h', '1d', '1w', '1M']);
    expect(refs.map((r) => r.name).slice(0, 2)).toEqual(['okx:btc-usdt@kline_1m', 'okx:btc-usdt@kline_1h']);
    expect(refs[7]?.name).toBe('okx:btc-usdt-swap@kline_1m');
    expect(refs.slice(0, 7).map((r) => r.nativeInterval)).toEqual(['1m', '1H', '6Hutc', '12Hutc', '1Dutc', '1Wutc', '1Mutc']);
    expect(refs[0]).toMatchObject({ symbol: 'BTC-USDT', topic: '{"channel":"candle1m","instId":"BTC-USDT"}' });
    expect(okx.ws.connectUrl('wss://ws.okx.com:8443/ws/v5/business', refs.map((r) => r.topic))).toEqual({ url: 'wss://ws.okx.com:8443/ws/v5/business', carried: 0 });
    expect(okx.ws.subscribeFrame([refs[0]!.topic, refs[7]!.topic], 12)).toBe(
      '{"id":"12","op":"subscribe","args":[{"channel":"candle1m","instId":"BTC-USDT"},{"channel":"candle1m","instId":"BTC-USDT-SWAP"}]}',
    );
    expect(JSON.parse(okx.ws.subscribeFrame([refs[0]!.topic], 1))).toEqual({ id: '1', op: 'subscribe', args: [{ channel: 'candle1m', instId: 'BTC-USDT' }] });
  });

  it('keeps every subscribe request under 64 KB and carries its limits and heartbeat as data', () => {
    const topics = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ channel: 'candle1m', instId: `COIN${i}-USDT-SWAP` }));
    const batches = okx.ws.subscribeBatches(topics);
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flat()).toEqual(topics);
    for (const b of batches) expect(Buffer.byteLength(okx.ws.subscribeFrame(b, 4294967295))).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
    expect(MAX_REQUEST_BYTES).toBeLessThan(64 * 1024);
    expect(okx.ws.heartbeat).toEqual({ kind: 'client-text', intervalMs: 20_000, ping: 'ping', pong: 'pong' });
    expect(okx.ws.heartbeat.kind === 'client-text' && okx.ws.heartbeat.intervalMs).toBeLessThan(30_000);
    expect(okx.ws.connectRate).toEqual({ limit: 2, windowMs: 1000 });
    expect(okx.ws.subscribeRate?.limit).toBeLessThan(480);
    expect(okx.ws.subscribeRate?.windowMs).toBe(3_600_000);
  });

  it('reads CONNECTOR_OKX_* with BTC-USDT / BTC-USDT-SWAP symbols (any case) and the business socket by default', () => {
    const { config } = load({ CONNECTOR_VENUES: 'okx', CONNECTOR_OKX_SYMBOLS: 'btc-usdt, BTC-USDT-swap', CONNECTOR_OKX_INTERVALS: '1m,1h,1d,1M' });
    expect(config.venues).toEqual([
      { id: 'okx', symbols: ['BTC-USDT', 'BTC-USDT-SWAP'], intervals: ['1m', '1h', '1d', '1M'], wsUrl: 'wss://ws.okx.com:8443/ws/v5/business', restUrl: 'https://www.okx.com' },
    ]);
  });

  it('refuses an interval OKX lacks (8h; 3d, whose UTC bar start OKX does not state) and a symbol in another venue’s form, naming the variable', () => {
    for (const interval of ['8h', '3d']) {
      const issues = issuesOf({ CONNECTOR_VENUES: 'okx', CONNECTOR_OKX_SYMBOLS: 'BTC-USDT', CONNECTOR_OKX_INTERVALS: `1m,${interval}` });
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatch(new RegExp(`^CONNECTOR_OKX_INTERVALS="1m,${interval}" \\(environment\\): expected OKX kline intervals: 1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 1d, 1w, 1M`));
    }
    const issues = issuesOf({ CONNECTOR_VENUES: 'okx', CONNECTOR_OKX_SYMBOLS: 'BTCUSDT' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^CONNECTOR_OKX_SYMBOLS="BTCUSDT" \(environment\): symbols are BASE-QUOTE \(spot\) or BASE-QUOTE-SWAP/);
    expect(issuesOf({ CONNECTOR_VENUES: 'okx' })[0]).toMatch(/^CONNECTOR_OKX_SYMBOLS=unset \(default\): required: okx is listed/);
  });

  it('asks /candles (limit ≤ 300) for a range within the latest bars, with exclusive after/before cursors around it', () => {
    const r = ref();
    const page = okx.rest.page(r, NOW - 10 * MIN, NOW - 5 * MIN, 7, NOW);
    expect(page.path).toBe(`${CANDLES_PATH}?instId=BTC-USDT&bar=1m&after=${NOW - 5 * MIN + 1}&before=${NOW - 10 * MIN - 1}&limit=7`);
    expect(page).toMatchObject({ limit: 7, weight: 1, window: { key: 'okx:candles', windowMs: 2000 } });
    expect(page.window?.limit).toBeLessThan(40);
    expect(okx.rest.page(r, NOW - 1000 * MIN, NOW, 1001, NOW).limit).toBe(300);
  });

  it('asks /history-candles (limit ≤ 100) once the range starts beyond the latest 1,440 bars, for every 1s range, and when the time is not given', () => {
    const r = ref();
    const old = okx.rest.page(r, NOW - 1500 * MIN, NOW - 1400 * MIN, 101, NOW);
    expect(old.path.startsWith(`${HISTORY_PATH}?instId=BTC-USDT&bar=1m&`)).toBe(true);
    expect(old).toMatchObject({ limit: 100, window: { key: 'okx:history-candles', windowMs: 2000 } });
    expect(old.window?.limit).toBeLessThan(20);
    expect(okx.rest.page(ref('BTC-USDT', '1s'), NOW - 5000, NOW, 6, NOW).path.startsWith(HISTORY_PATH)).toBe(true);
    expect(okx.rest.page(r, NOW - 10 * MIN, NOW, 11).path.startsWith(HISTORY_PATH)).toBe(true);
    // Months: 1,440 of them reach back further than any range.
    expect(okx.rest.page(ref('BTC-USDT', '1M'), Date.UTC(2020, 0, 1), Date.UTC(2023, 0, 1), 37, NOW).path.startsWith(CANDLES_PATH)).toBe(true);
  });

  it('reads the docs’ REST body (newest first) into closed REST candles with the venue’s volumes, and refuses bodies that are not rows', () => {
    const swap = ref('BTC-USDT-SWAP');
    // Nautilus test_data/http_get_candlesticks_full.json.
    const body = {
      code: '0',
      msg: '',
      data: [
        ['1747094040000', '102806.1', '102820.4', '102806.1', '102820.4', '1040.37', '10.4037', '1069603.34883', '1'],
        ['1747093980000', '102806', '102820.5', '102783.1', '102806.1', '7164.04', '71.6404', '7364701.57952', '1'],
      ],
    };
    const rows = okx.rest.parse(body, swap, NOW, 5);
    if (typeof rows === 'string') throw new Error(rows);
    expect(rows.map((c) => [c.openTime, c.volume, c.quoteVolume, c.closed, c.source])).toEqual([
      [1747094040000, '10.4037', '1069603.34883', true, 'rest'],
      [1747093980000, '71.6404', '7364701.57952', true, 'rest'],
    ]);
    expect(rows[0]).toMatchObject({ closeTime: 1747094040000 + 59_999, eventTime: NOW, receivedAt: 5, raw: undefined });
    expect(okx.rest.order).toBe('newest-first');
    expect(okx.rest.parse({ code: '51001', msg: "Instrument ID doesn't exist.", data: [] }, swap, NOW, 5)).toMatch(/code 51001/);
    expect(okx.rest.parse([[1, 2]], swap, NOW, 5)).toMatch(/unexpected OKX candles body/);
    expect(okx.rest.parse({ code: '0', msg: '', data: [['x']] }, swap, NOW, 5)).toMatch(/unexpected OKX candle rows/);
  });

  it('reads code 50011 as a rate-limit refusal whether it comes with HTTP 200 or 429, and 429 closes the gate', () => {
    expect(okx.rest.bodyStatus?.({ code: '50011', msg: 'Rate limit reached. Please refer to API documentation and throttle requests accordingly.', data: [] })).toBe(429);
    expect(okx.rest.bodyStatus?.({ code: '0', msg: '', data: [] })).toBeUndefined();
    expect(okx.rest.gateStatuses[429]).toBe(2000);
    expect(okx.rest.banStatuses).toEqual([]);
  });
});
