/**
 * The BingX adapters (exchanges.md §3): stream names, subscribe frames and heartbeat answers, the
 * kline pushes and subscribe replies as BingX's docs and the best-known clients show them, REST pages
 * and rows, and the configuration (symbols `BTC-USDT`, spot intervals only where every source agrees).
 * Frames are the documented JSON texts; the connection gunzips them before the parser sees them.
 */
import { describe, expect, it } from 'vitest';
import { StatusStream, type StatusEvent } from '../../../src/core/status.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { CONTROL_ERROR, CONTROL_REPLY, PARSE_ERROR, UNKNOWN_STREAM, isCandle, registerVenueStreams, type FrameOutcome } from '../../../src/upstream/venue.ts';
import type { Candle } from '../../../src/core/candle.ts';
import { bingxSpot } from '../../../src/venues/bingx/spot.ts';
import { bingxSwap } from '../../../src/venues/bingx/swap.ts';
import { issuesOf, load } from '../../config/helpers.ts';

const NOW = 1_700_000_000_000;

function setup(venue: typeof bingxSpot, symbols: string[], intervals: ('1m' | '5m' | '1h')[]) {
  const registry = new StreamRegistry();
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const refs = registerVenueStreams(registry, venue, symbols, intervals);
  let wall = NOW;
  const parser = venue.ws.createParser({ venue: venue.id, registry, status, clock: { now: () => wall, monotonic: () => 0 } });
  const parse = (text: string): FrameOutcome => parser.parse(Buffer.from(text), 1);
  return { refs, parser, parse, events, setWall: (t: number) => (wall = t) };
}

function candleOf(out: FrameOutcome): Candle {
  if (!isCandle(out)) throw new Error(`expected a candle, got ${out.signal}`);
  return out;
}

// BingX-spot-api-doc@1d9d095 "Kline Streams" (response example), with ccxt's `code` / `success` envelope.
const SPOT_PUSH =
  '{"code":0,"data":{"E":1649832726550,"K":{"T":1649832779999,"c":"40017.48","h":"40027.83","i":"1min","l":"40017.48","n":13,"o":"40025.42","q":"2693.492344","s":"BTC-USDT","t":1649832720000,"v":"0.067295"},"e":"kline","s":"BTC-USDT"},"dataType":"BTC-USDT@kline_1min","success":true}';
// ccxt pro/bingx.ts handleOHLCV, linear swap.
const SWAP_PUSH = '{"code":0,"dataType":"BTC-USDT@kline_1m","s":"BTC-USDT","data":[{"c":"28909.0","o":"28915.4","h":"28915.4","l":"28896.1","v":"27.6919","T":1690907580000}]}';
// BingX-swap-api-v2-doc@4a961e5 "Subscribe K-Line Data": data an object, T a close time.
const SWAP_PUSH_DOC = '{"code":0,"data":{"T":1649832779999,"c":"54564.31","h":"54711.73","l":"54418.27","o":"54577.41","v":"1607.0727000000002"},"s":"BTC-USDT","dataType":"BTC-USDT@kline_1m"}';

describe('BingX adapters', () => {
  it('names relay streams bingx-spot:btc-usdt@kline_1m and subscribes BingX’s dataType, one per request, with reqType on both markets', () => {
    const registry = new StreamRegistry();
    const spot = registerVenueStreams(registry, bingxSpot, ['BTC-USDT'], ['1m', '15m']);
    const swap = registerVenueStreams(registry, bingxSwap, ['BTC-USDT'], ['1m', '1h']);
    expect(spot.map((r) => [r.name, r.topic, r.symbol, r.nativeInterval])).toEqual([
      ['bingx-spot:btc-usdt@kline_1m', 'BTC-USDT@kline_1min', 'BTC-USDT', '1min'],
      ['bingx-spot:btc-usdt@kline_15m', 'BTC-USDT@kline_15min', 'BTC-USDT', '15min'],
    ]);
    expect(swap.map((r) => [r.name, r.topic])).toEqual([
      ['bingx-swap:btc-usdt@kline_1m', 'BTC-USDT@kline_1m'],
      ['bingx-swap:btc-usdt@kline_1h', 'BTC-USDT@kline_1h'],
    ]);
    const topics = spot.map((r) => r.topic);
    expect(bingxSpot.ws.connectUrl('wss://open-api-ws.bingx.com/market', topics)).toEqual({ url: 'wss://open-api-ws.bingx.com/market', carried: 0 });
    expect(bingxSpot.ws.subscribeBatches(topics)).toEqual([['BTC-USDT@kline_1min'], ['BTC-USDT@kline_15min']]);
    expect(JSON.parse(bingxSpot.ws.subscribeFrame(['BTC-USDT@kline_1min'], 7))).toEqual({ id: '7', reqType: 'sub', dataType: 'BTC-USDT@kline_1min' });
    expect(bingxSwap.ws.encoding).toBe('gzip');
    expect(bingxSwap.ws.closes).toBe('next-open');
  });

  it('answers the spot server’s JSON ping with the same id and time, and swap’s Ping with Pong', () => {
    const spot = bingxSpot.ws.heartbeat;
    const swap = bingxSwap.ws.heartbeat;
    if (spot.kind !== 'server-json' || swap.kind !== 'server-json') throw new Error('expected server pings');
    // BingX.Net BingXPing: {"ping":"<id>","time":"<time>"} → BingXPong {"pong":…,"time":…}.
    const ping = '{"ping":"2177e6a9a17a4a0d8b2b6b0a2b1f4e3c","time":"2026-12-01T11:00:05.123+0800"}';
    expect(ping.startsWith(spot.pingPrefix)).toBe(true);
    expect(JSON.parse(spot.answer(Buffer.from(ping)))).toEqual({ pong: '2177e6a9a17a4a0d8b2b6b0a2b1f4e3c', time: '2026-12-01T11:00:05.123+0800' });
    expect(spot.maxFrameBytes).toBeGreaterThanOrEqual(ping.length);
    expect([swap.pingPrefix, swap.answer(Buffer.from('Ping')), swap.maxFrameBytes]).toEqual(['Ping', 'Pong', 4]);
  });

  it('reads a spot kline push as an open candle with BingX’s values, quote volume and trade count, and nothing it does not publish', () => {
    const { refs, parse } = setup(bingxSpot, ['BTC-USDT'], ['1m']);
    const c = candleOf(parse(SPOT_PUSH));
    expect(c).toMatchObject({ stream: refs[0], openTime: 1649832720000, closeTime: 1649832779999, eventTime: 1649832726550, closed: false, open: '40025.42' });
    expect([c.high, c.low, c.close, c.volume, c.quoteVolume, c.trades, c.source]).toEqual(['40027.83', '40017.48', '40017.48', '0.067295', '2693.492344', 13, 'ws']);
    expect([c.firstTradeId, c.takerBuyBaseVolume, c.ignore]).toEqual([undefined, undefined, undefined]);
  });

  it('reads a swap push in both documented shapes, taking T as the candle it falls in (open time per ccxt, close time in BingX’s example)', () => {
    const { refs, parse, setWall } = setup(bingxSwap, ['BTC-USDT'], ['1m']);
    const a = candleOf(parse(SWAP_PUSH));
    expect(a).toMatchObject({ stream: refs[0], openTime: 1690907580000, closeTime: 1690907639999, closed: false, open: '28915.4', close: '28909.0', volume: '27.6919' });
    expect([a.quoteVolume, a.trades]).toEqual([undefined, undefined]);
    const b = candleOf(parse(SWAP_PUSH_DOC));
    expect([b.openTime, b.closeTime, b.volume]).toEqual([1649832720000, 1649832779999, '1607.0727000000002']);
    // No event time on swap: the receive time, strictly increasing so updates in one millisecond keep their order.
    setWall(NOW);
    const e1 = candleOf(parse(SWAP_PUSH)).eventTime;
    const e2 = candleOf(parse(SWAP_PUSH)).eventTime;
    expect(e2).toBeGreaterThan(e1);
    // Several entries: the newest one.
    const two = '{"code":0,"dataType":"BTC-USDT@kline_1m","data":[{"c":"2","o":"1","h":"2","l":"1","v":"1","T":1690907640000},{"c":"1","o":"1","h":"1","l":"1","v":"1","T":1690907580000}]}';
    expect(candleOf(parse(two)).openTime).toBe(1690907640000);
  });

  it('tells subscribe replies from refusals, and counts garbage, unknown streams and mismatched pushes without throwing', () => {
    const { parser, parse, events } = setup(bingxSpot, ['BTC-USDT'], ['1m']);
    expect(parse('{"id":"1","code":0,"msg":""}')).toBe(CONTROL_REPLY);
    expect(parser.lastControlId).toBe('1');
    expect(parse('{"id":"2","code":100400,"msg":"ILLEGAL_ARGUMENT"}')).toBe(CONTROL_ERROR);
    expect(parser.lastControlError).toEqual({ code: 100400, msg: 'ILLEGAL_ARGUMENT' });
    expect(parse(SPOT_PUSH.replace('BTC-USDT@kline_1min', 'ETH-USDT@kline_1min'))).toBe(UNKNOWN_STREAM);
    expect(parser.unknownStreams).toBe(1);
    const bad = [
      'not json',
      '[1,2]',
      '{"hello":1}',
      SPOT_PUSH.replace('"o":"40025.42"', '"o":"40,025"'),
      SPOT_PUSH.replace('"i":"1min"', '"i":"5min"'),
      SPOT_PUSH.replace('"t":1649832720000', '"t":1649832720001'),
      SPOT_PUSH.replace('"code":0', '"code":100503'),
      '\u00ff\u00fe',
    ];
    for (const text of bad) expect(parse(text)).toBe(PARSE_ERROR);
    expect(parser.parseErrors).toBe(bad.length);
    expect(parser.parse(Buffer.from([0xff, 0xfe, 0x7b]), 0)).toBe(PARSE_ERROR);
    // Reported, rate-limited: one event for the burst.
    expect(events.filter((e) => e.type === 'parse.error')).toHaveLength(1);
  });

  it('asks BingX’s klines paths for at most 1000 rows, spelling spot’s intervals as REST does, with a timestamp', () => {
    const [spotRef] = registerVenueStreams(new StreamRegistry(), bingxSpot, ['BTC-USDT'], ['5m']);
    const [swapRef] = registerVenueStreams(new StreamRegistry(), bingxSwap, ['ETH-USDT'], ['1h']);
    expect(bingxSpot.rest.page(spotRef!, 0, 600_000, 3, NOW)).toEqual({
      path: `/openApi/spot/v2/quote/klines?symbol=BTC-USDT&interval=5m&startTime=0&endTime=600000&limit=3&timestamp=${NOW}`,
      limit: 3,
      weight: 1,
      window: { key: 'bingx:market-data', limit: 400, windowMs: 10_000 },
    });
    expect(bingxSwap.rest.page(swapRef!, 0, 3_600_000, 5000, NOW).path).toBe(`/openApi/swap/v3/quote/klines?symbol=ETH-USDT&interval=1h&startTime=0&endTime=3600000&limit=1000&timestamp=${NOW}`);
    // One window shared by spot and swap (same key, same origin's gate): 400 of BingX's 500 per 10 s.
    expect(bingxSpot.rest.page(spotRef!, 0, 600_000, 3, NOW).window).toEqual({ key: 'bingx:market-data', limit: 400, windowMs: 10_000 });
    expect(bingxSwap.rest.page(swapRef!, 0, 600_000, 3, NOW).window).toEqual(bingxSpot.rest.page(spotRef!, 0, 600_000, 3, NOW).window);
    expect(bingxSpot.rest.gateStatuses).toEqual({ 429: 300_000, 418: 300_000 });
  });

  it('reads REST rows as closed candles (spot arrays with close time and quote volume, swap objects), and says what is wrong with a bad or refused body', () => {
    const [spotRef] = registerVenueStreams(new StreamRegistry(), bingxSpot, ['BTC-USDT'], ['1m']);
    const [swapRef] = registerVenueStreams(new StreamRegistry(), bingxSwap, ['BTC-USDT'], ['5m']);
    // BingX.Net BingXKline: [openTime, open, high, low, close, volume, closeTime, quoteVolume]; numbers or strings.
    const spotBody = { code: 0, timestamp: NOW, data: [[1649832720000, 40025.42, '40027.83', '40017.48', '40017.48', '0.067295', 1649832779999, 2693.492344]] };
    const spot = bingxSpot.rest.parse(spotBody, spotRef!, NOW, 5);
    if (typeof spot === 'string') throw new Error(spot);
    expect(spot[0]).toMatchObject({ openTime: 1649832720000, closeTime: 1649832779999, open: '40025.42', high: '40027.83', quoteVolume: '2693.492344', closed: true, source: 'rest', eventTime: NOW, receivedAt: 5 });
    // BingX-swap-api-v2-doc "K-Line Data" response example.
    const swapBody = {
      code: 0,
      msg: '',
      data: [
        { open: '19396.8', close: '19394.4', high: '19397.5', low: '19385.7', volume: '110.05', time: 1666583700000 },
        { open: '19394.4', close: '19379.0', high: '19394.4', low: '19368.3', volume: '167.44', time: 1666584000000 },
      ],
    };
    const swap = bingxSwap.rest.parse(swapBody, swapRef!, NOW, 5);
    if (typeof swap === 'string') throw new Error(swap);
    expect(swap.map((c) => [c.openTime, c.closeTime, c.open, c.close, c.volume, c.quoteVolume])).toEqual([
      [1666583700000, 1666583999999, '19396.8', '19394.4', '110.05', undefined],
      [1666584000000, 1666584299999, '19394.4', '19379.0', '167.44', undefined],
    ]);
    expect(bingxSwap.rest.parse({ code: 100410, msg: 'frequency limit' }, swapRef!, NOW, 5)).toMatch(/answered code 100410: frequency limit/);
    expect(bingxSwap.rest.parse({ code: 0, data: [{ open: 1 }] }, swapRef!, NOW, 5)).toMatch(/unexpected .*swap\/v3\/quote\/klines rows/);
    expect(bingxSpot.rest.parse('<html>', spotRef!, NOW, 5)).toMatch(/unexpected/);
  });
});

describe('BingX configuration', () => {
  it('takes BTC-USDT symbols case-insensitively and the venues’ production endpoints by default', () => {
    const { config } = load({ CONNECTOR_VENUES: 'bingx-spot,bingx-swap', CONNECTOR_BINGX_SPOT_SYMBOLS: 'btc-usdt,ETH-USDT', CONNECTOR_BINGX_SWAP_SYMBOLS: 'BTC-USDT', CONNECTOR_BINGX_SWAP_INTERVALS: '1m,8h,1M' });
    expect(config.venues).toEqual([
      { id: 'bingx-spot', symbols: ['BTC-USDT', 'ETH-USDT'], intervals: ['1m'], wsUrl: 'wss://open-api-ws.bingx.com/market', restUrl: 'https://open-api.bingx.com' },
      { id: 'bingx-swap', symbols: ['BTC-USDT'], intervals: ['1m', '8h', '1M'], wsUrl: 'wss://open-api-swap.bingx.com/swap-market', restUrl: 'https://open-api.bingx.com' },
    ]);
  });

  it('refuses spot intervals the sources disagree on, native spellings, and symbols without the dash, naming the variable', () => {
    expect(issuesOf({ CONNECTOR_VENUES: 'bingx-spot', CONNECTOR_BINGX_SPOT_SYMBOLS: 'BTC-USDT', CONNECTOR_BINGX_SPOT_INTERVALS: '1m,1h' })[0]).toMatch(
      /^CONNECTOR_BINGX_SPOT_INTERVALS="1m,1h" \(environment\): expected BingX spot kline intervals: 1m, 5m, 15m, 30m$/,
    );
    expect(issuesOf({ CONNECTOR_VENUES: 'bingx-spot', CONNECTOR_BINGX_SPOT_SYMBOLS: 'BTC-USDT', CONNECTOR_BINGX_SPOT_INTERVALS: '1min' })[0]).toMatch(/^CONNECTOR_BINGX_SPOT_INTERVALS=/);
    expect(issuesOf({ CONNECTOR_VENUES: 'bingx-swap', CONNECTOR_BINGX_SWAP_SYMBOLS: 'BTCUSDT' })[0]).toMatch(/^CONNECTOR_BINGX_SWAP_SYMBOLS="BTCUSDT" \(environment\): symbols are BASE-QUOTE/);
    expect(issuesOf({ CONNECTOR_VENUES: 'bingx-swap', CONNECTOR_BINGX_SWAP_SYMBOLS: 'BTC-USDT', CONNECTOR_BINGX_SWAP_INTERVALS: '1s' })[0]).toMatch(/^CONNECTOR_BINGX_SWAP_INTERVALS=.*expected BingX swap kline intervals: 1m, 3m,/);
  });
});
