/**
 * The Bybit adapter's data (src/venues/bybit/market.ts), each point against bybit-exchange/docs
 * @072c197: stream and topic names, subscribe requests of at most 10 args and a per-socket cap that
 * keeps the args within 21,000 characters (Connect), the JSON ping every 20 s, Get Kline pages
 * (`start`/`end`, limit ≤ 1000) and rows (newest first, seven strings) from `docs/v5/market/kline.mdx`,
 * the 403 ten-minute ban, and the configuration: variables, symbol forms, the interval map, and exit
 * 78 naming the variable for an interval Bybit lacks.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { registerVenueStreams } from '../../../src/upstream/venue.ts';
import { MAX_ARGS_CHARS_PER_CONNECTION, REST_WINDOW, bybitLinear, bybitSpot } from '../../../src/venues/bybit/market.ts';
import { issuesOf, load, ROOT } from '../../config/helpers.ts';

/** market/kline.mdx "Response Example", verbatim (an inverse answer: the shape is the same for every category). */
const DOC_BODY = {
  retCode: 0,
  retMsg: 'OK',
  result: {
    symbol: 'BTCUSD',
    category: 'inverse',
    list: [
      ['1670608800000', '17071', '17073', '17027', '17055.5', '268611', '15.74462667'],
      ['1670605200000', '17071.5', '17071.5', '17061', '17071', '4177', '0.24469757'],
      ['1670601600000', '17086.5', '17088', '16978', '17071.5', '6356', '0.37288112'],
    ],
  },
  retExtInfo: {},
  time: 1672025956592,
};

function body(category: string, symbol: string, list: unknown[], retCode = 0) {
  return { retCode, retMsg: retCode === 0 ? 'OK' : 'Too many visits!', result: { symbol, category, list }, retExtInfo: {}, time: 1 };
}

describe('Bybit adapter', () => {
  it('names relay streams bybit-spot:/bybit-linear:<symbol>@kline_<interval> and subscribes Bybit’s kline.<interval>.<SYMBOL> topics', () => {
    const registry = new StreamRegistry();
    const spot = registerVenueStreams(registry, bybitSpot, ['BTCUSDT'], ['1m', '1h', '1d', '1w', '1M']);
    const linear = registerVenueStreams(registry, bybitLinear, ['BTCUSDT', 'BTCUSDT-21FEB25'], ['1m']);
    expect(spot.map((r) => [r.name, r.topic, r.symbol, r.interval, r.nativeInterval])).toEqual([
      ['bybit-spot:btcusdt@kline_1m', 'kline.1.BTCUSDT', 'BTCUSDT', '1m', '1'],
      ['bybit-spot:btcusdt@kline_1h', 'kline.60.BTCUSDT', 'BTCUSDT', '1h', '60'],
      ['bybit-spot:btcusdt@kline_1d', 'kline.D.BTCUSDT', 'BTCUSDT', '1d', 'D'],
      ['bybit-spot:btcusdt@kline_1w', 'kline.W.BTCUSDT', 'BTCUSDT', '1w', 'W'],
      ['bybit-spot:btcusdt@kline_1M', 'kline.M.BTCUSDT', 'BTCUSDT', '1M', 'M'],
    ]);
    expect(linear.map((r) => [r.venue, r.name, r.topic])).toEqual([
      ['bybit-linear', 'bybit-linear:btcusdt@kline_1m', 'kline.1.BTCUSDT'],
      ['bybit-linear', 'bybit-linear:btcusdt-21feb25@kline_1m', 'kline.1.BTCUSDT-21FEB25'],
    ]);
    // Same topic on both venues, two streams.
    expect(registry.get('bybit-spot', 'kline.1.BTCUSDT')).toBe(spot[0]);
    expect(registry.get('bybit-linear', 'kline.1.BTCUSDT')).toBe(linear[0]);
  });

  it('opens the documented endpoint bare and subscribes in requests of at most 10 args, never more than 21,000 characters of args on one socket', () => {
    for (const venue of [bybitSpot, bybitLinear]) {
      expect(venue.ws.connectUrl('wss://stream.bybit.com/v5/public/spot', ['kline.1.BTCUSDT'])).toEqual({ url: 'wss://stream.bybit.com/v5/public/spot', carried: 0 });
      const topics = Array.from({ length: 45 }, (_, i) => `kline.1.SYM${i}USDT`);
      const batches = venue.ws.subscribeBatches(topics);
      expect(batches.map((b) => b.length)).toEqual([10, 10, 10, 10, 5]);
      expect(batches.flat()).toEqual(topics);
      expect(JSON.parse(venue.ws.subscribeFrame(batches[0] ?? [], 7))).toEqual({ req_id: '7', op: 'subscribe', args: topics.slice(0, 10) });
      // The longest topics the symbol form admits, as many as a socket may carry: still within the cap.
      const longest = venue === bybitSpot ? 'X'.repeat(30) : `${'X'.repeat(30)}-21FEB25`;
      expect(venue.env.symbolPattern.test(longest)).toBe(true);
      const full = Array.from({ length: venue.ws.maxStreamsPerConnection }, () => `kline.720.${longest}`);
      expect(JSON.stringify(full).length).toBeLessThanOrEqual(MAX_ARGS_CHARS_PER_CONNECTION);
      expect(JSON.stringify([...full, `kline.720.${longest}`]).length).toBeGreaterThan(MAX_ARGS_CHARS_PER_CONNECTION);
    }
    expect([bybitSpot.ws.maxStreamsPerConnection, bybitLinear.ws.maxStreamsPerConnection]).toEqual([488, 411]);
  });

  it('pings {"op":"ping"} every 20 s and knows both public pongs by their prefix; half of Bybit’s 500 connections per 5 min per domain for each venue', () => {
    const hb = bybitSpot.ws.heartbeat;
    expect(hb).toMatchObject({ kind: 'client-json', intervalMs: 20_000, ping: '{"op":"ping"}' });
    if (hb.kind !== 'client-json') return;
    for (const pong of [
      '{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","op":"ping"}',
      '{"success":true,"ret_msg":"pong","conn_id":"465772b1-7630-4fdc-a492-e003e6f0f260","req_id":"","op":"ping"}',
    ]) {
      expect(pong.startsWith(hb.pongPrefix)).toBe(true);
      expect(pong.length).toBeLessThanOrEqual(hb.maxFrameBytes);
    }
    expect((bybitSpot.ws.maxConnectionAttemptsPer5Min ?? 0) + (bybitLinear.ws.maxConnectionAttemptsPer5Min ?? 0)).toBeLessThanOrEqual(500);
  });

  it('asks Get Kline with category, start and end (not startTime/endTime) and a limit that covers the range, at most 1000', () => {
    const [spot] = registerVenueStreams(new StreamRegistry(), bybitSpot, ['BTCUSDT'], ['1h']);
    const [linear] = registerVenueStreams(new StreamRegistry(), bybitLinear, ['ETHUSDT'], ['1m']);
    expect(bybitSpot.rest.page(spot!, 1670601600000, 1670608800000, 3)).toEqual({
      path: '/v5/market/kline?category=spot&symbol=BTCUSDT&interval=60&start=1670601600000&end=1670608800000&limit=3',
      limit: 3,
      weight: 1,
      window: REST_WINDOW,
    });
    expect(bybitLinear.rest.page(linear!, 0, 60_000, 5000)).toEqual({
      path: '/v5/market/kline?category=linear&symbol=ETHUSDT&interval=1&start=0&end=60000&limit=1000',
      limit: 1000,
      weight: 1,
      window: REST_WINDOW,
    });
    expect(bybitSpot.rest.order).toBe('newest-first');
  });

  it('reads Get Kline rows as closed REST candles with turnover as quote volume and no trade fields; a wrong body, retCode or row is an error string', () => {
    const [ref] = registerVenueStreams(new StreamRegistry(), bybitSpot, ['BTCUSDT'], ['1h']);
    const stream = ref!;
    const rows = bybitSpot.rest.parse(body('spot', 'BTCUSDT', DOC_BODY.result.list), stream, 5, 6);
    if (typeof rows === 'string') throw new Error(rows);
    expect(rows.map((c) => c.openTime)).toEqual([1670608800000, 1670605200000, 1670601600000]);
    expect(rows[0]).toEqual({
      stream,
      openTime: 1670608800000,
      closeTime: 1670612399999,
      eventTime: 5,
      closed: true,
      open: '17071',
      high: '17073',
      low: '17027',
      close: '17055.5',
      volume: '268611',
      quoteVolume: '15.74462667',
      source: 'rest',
      raw: undefined,
      receivedAt: 6,
    });
    expect(bybitSpot.rest.parse(body('spot', 'BTCUSDT', []), stream, 0, 0)).toEqual([]);
    // The documented example answers for inverse BTCUSD: not this stream's answer.
    expect(bybitSpot.rest.parse(DOC_BODY, stream, 0, 0)).toMatch(/answered BTCUSD for BTCUSDT/);
    expect(bybitSpot.rest.parse({ ...DOC_BODY, result: { ...DOC_BODY.result, symbol: 'BTCUSDT' } }, stream, 0, 0)).toMatch(/category inverse for spot/);
    expect(bybitSpot.rest.parse(body('spot', 'BTCUSDT', [], 10006), stream, 0, 0)).toMatch(/retCode 10006: Too many visits!/);
    expect(bybitSpot.rest.parse([], stream, 0, 0)).toMatch(/unexpected \/v5\/market\/kline body/);
    expect(bybitSpot.rest.parse(body('spot', 'BTCUSDT', [[1670608800000, '1', '1', '1', '1', '1', '1']]), stream, 0, 0)).toMatch(/unexpected \/v5\/market\/kline result/);
    expect(bybitSpot.rest.parse(body('spot', 'BTCUSDT', [['1670608800000', '1', '1', '1', '1', '1']]), stream, 0, 0)).toMatch(/unexpected/);
    expect(bybitSpot.rest.parse(body('spot', 'BTCUSDT', [['1670608800001', '1', '1', '1', '1', '1', '1']]), stream, 0, 0)).toMatch(/not a 1h open time/);
  });

  it('closes the REST gate for 10 minutes on 403 (a ban) and for one 5 s window on 429, and keeps both venues together under 600 requests per 5 s', () => {
    expect(bybitSpot.rest.gateStatuses).toEqual({ 403: 600_000, 429: 5000 });
    expect(bybitSpot.rest.banStatuses).toEqual([403]);
    const [spot] = registerVenueStreams(new StreamRegistry(), bybitSpot, ['BTCUSDT'], ['1m']);
    const [linear] = registerVenueStreams(new StreamRegistry(), bybitLinear, ['BTCUSDT'], ['1m']);
    const a = bybitSpot.rest.page(spot!, 0, 60_000, 2).window;
    const b = bybitLinear.rest.page(linear!, 0, 60_000, 2).window;
    // One key: both venues' requests count in one window of the origin's gate.
    expect(a).toEqual(b);
    expect(a?.windowMs).toBe(5000);
    expect(a?.limit).toBeLessThan(600);
  });
});

describe('Bybit configuration', () => {
  it('reads each venue’s own variables with the documented endpoints as defaults, symbols upper-cased', () => {
    const { config } = load({
      CONNECTOR_VENUES: 'bybit-spot,bybit-linear',
      CONNECTOR_BYBIT_SPOT_SYMBOLS: 'btcusdt, ETHUSDC',
      CONNECTOR_BYBIT_SPOT_INTERVALS: '1m,1h,1d,1w,1M',
      CONNECTOR_BYBIT_LINEAR_SYMBOLS: 'BTCUSDT,btcperp,BTCUSDT-21FEB25,BTC-24MAR23',
    });
    expect(config.venues).toEqual([
      { id: 'bybit-spot', symbols: ['BTCUSDT', 'ETHUSDC'], intervals: ['1m', '1h', '1d', '1w', '1M'], wsUrl: 'wss://stream.bybit.com/v5/public/spot', restUrl: 'https://api.bybit.com' },
      {
        id: 'bybit-linear',
        symbols: ['BTCUSDT', 'BTCPERP', 'BTCUSDT-21FEB25', 'BTC-24MAR23'],
        intervals: ['1m'],
        wsUrl: 'wss://stream.bybit.com/v5/public/linear',
        restUrl: 'https://api.bybit.com',
      },
    ]);
  });

  it('refuses an interval Bybit lacks (1s, 8h, 3d) and a symbol in the wrong form, naming the variable', () => {
    const issues = issuesOf({ CONNECTOR_VENUES: 'bybit-spot', CONNECTOR_BYBIT_SPOT_SYMBOLS: 'BTCUSDT', CONNECTOR_BYBIT_SPOT_INTERVALS: '1m,8h' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^CONNECTOR_BYBIT_SPOT_INTERVALS="1m,8h" \(environment\): expected Bybit spot kline intervals: 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 1d, 1w, 1M$/);
    expect(issuesOf({ CONNECTOR_VENUES: 'bybit-linear', CONNECTOR_BYBIT_LINEAR_SYMBOLS: 'BTC_USDT' })[0]).toMatch(/^CONNECTOR_BYBIT_LINEAR_SYMBOLS="BTC_USDT" \(environment\): symbols are .*BTCUSDT-21FEB25/);
    expect(issuesOf({ CONNECTOR_VENUES: 'bybit-spot', CONNECTOR_BYBIT_SPOT_SYMBOLS: 'BTCUSDT-21FEB25' })[0]).toMatch(/^CONNECTOR_BYBIT_SPOT_SYMBOLS=/);
    expect(issuesOf({ CONNECTOR_VENUES: 'bybit-linear' })[0]).toMatch(/^CONNECTOR_BYBIT_LINEAR_SYMBOLS=unset \(default\): required/);
  });

  it('exits 78 naming the variable when an interval Bybit lacks is configured', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'src/main.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', CONNECTOR_VENUES: 'bybit-linear', CONNECTOR_BYBIT_LINEAR_SYMBOLS: 'BTCUSDT', CONNECTOR_BYBIT_LINEAR_INTERVALS: '1s' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^config error: CONNECTOR_BYBIT_LINEAR_INTERVALS="1s" \(environment\): expected Bybit linear kline intervals/) as unknown]);
  });
});
