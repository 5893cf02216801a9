/**
 * OKX frames → canonical candles (src/venues/okx/protocol.ts). Frames are the docs' own examples
 * ([OKXD] Ws_Candlesticks_Channel.md, Subscribe.md, Notification.md; Nautilus test_data/ws_candle.json),
 * re-timed to bar boundaries where the docs use an arbitrary `ts`.
 */
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/core/clock.ts';
import { StatusStream, type StatusEvent } from '../../../src/core/status.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { CONTROL_ERROR, CONTROL_REPLY, PARSE_ERROR, SERVER_SHUTDOWN, UNKNOWN_STREAM, isCandle, registerVenueStreams, type FrameOutcome } from '../../../src/upstream/venue.ts';
import { okx } from '../../../src/venues/okx/okx.ts';
import { OkxFrameParser } from '../../../src/venues/okx/protocol.ts';

const WALL = 1_700_000_000_000;
const clock: Clock = { now: () => WALL, monotonic: () => 1000 };
/** A 1m bar boundary. */
const T = 1_700_000_040_000;
const DAY = 1_699_920_000_000; // 2023-11-14T00:00:00Z

function setup(symbols: string[] = ['BTC-USDT', 'BTC-USDT-SWAP'], intervals: Array<'1m' | '1d' | '6h'> = ['1m', '1d']) {
  const registry = new StreamRegistry();
  const refs = registerVenueStreams(registry, okx, symbols, intervals);
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const parser = new OkxFrameParser({ venue: 'okx', registry, status, clock });
  return { refs, parser, events };
}

function push(channel: string, instId: string, rows: readonly (readonly string[])[]): Buffer {
  return Buffer.from(JSON.stringify({ arg: { channel, instId }, data: rows }));
}

function candleOf(out: FrameOutcome) {
  if (!isCandle(out)) throw new Error(`expected a candle, got ${out.signal}`);
  return out;
}

describe('OKX frame parser', () => {
  it('reads a spot push on the fast path: vol is base, volCcyQuote is quote, confirm "0" is forming, absent fields stay absent', () => {
    const { parser, refs } = setup();
    const frame = push('candle1m', 'BTC-USDT', [[String(T), '8533.02', '8553.74', '8527.17', '8548.26', '45247', '529.5858061', '5529.5858061', '0']]);
    const c = candleOf(parser.parse(frame, 7));
    expect(parser.slowPath).toBe(0);
    expect(c.stream).toBe(refs[0]);
    expect(c).toMatchObject({ openTime: T, closeTime: T + 59_999, eventTime: WALL, closed: false, open: '8533.02', high: '8553.74', low: '8527.17', close: '8548.26' });
    expect(c.volume).toBe('45247');
    expect(c.quoteVolume).toBe('5529.5858061');
    expect(c.source).toBe('ws');
    expect(c.receivedAt).toBe(7);
    expect(c.raw).toBeUndefined();
    for (const absent of ['trades', 'firstTradeId', 'lastTradeId', 'takerBuyBaseVolume', 'takerBuyQuoteVolume', 'ignore'] as const) expect(absent in c).toBe(false);
  });

  it('reads a perpetual push with volCcy as the base volume (vol counts contracts) and confirm "1" as closed', () => {
    const { parser, refs } = setup();
    // Nautilus test_data/http_get_candlesticks_full.json's BTC-USDT-SWAP row: 1040.37 contracts of 0.01 BTC.
    const frame = push('candle1m', 'BTC-USDT-SWAP', [['1747094040000', '102806.1', '102820.4', '102806.1', '102820.4', '1040.37', '10.4037', '1069603.34883', '1']]);
    const c = candleOf(parser.parse(frame, 1));
    expect(c.stream).toBe(refs[2]);
    expect(c.stream.name).toBe('okx:btc-usdt-swap@kline_1m');
    expect(c.closed).toBe(true);
    expect(c.volume).toBe('10.4037');
    expect(c.quoteVolume).toBe('1069603.34883');
    expect(parser.slowPath).toBe(0);
  });

  it('takes the docs’ pretty-printed push (whitespace) through the fallback with the same result', () => {
    const { parser } = setup();
    const pretty = Buffer.from(`{\n  "arg": {\n    "channel": "candle1Dutc",\n    "instId": "BTC-USDT"\n  },\n  "data": [\n    [\n      "${DAY}",\n      "8533.02",\n      "8553.74",\n      "8527.17",\n      "8548.26",\n      "45247",\n      "529.5858061",\n      "5529.5858061",\n      "1"\n    ]\n  ]\n}`);
    const c = candleOf(parser.parse(pretty, 1));
    expect(parser.slowPath).toBe(1);
    expect(c.stream.name).toBe('okx:btc-usdt@kline_1d');
    expect(c).toMatchObject({ openTime: DAY, closeTime: DAY + 86_400_000 - 1, closed: true, volume: '45247', quoteVolume: '5529.5858061' });
  });

  it('reads confirm as the last element of an eight-column row (history-candles’ documented shape)', () => {
    const { parser } = setup();
    const spot = candleOf(parser.parse(push('candle1m', 'BTC-USDT', [[String(T), '1', '2', '0.5', '1.5', '10', '15', '1']]), 1));
    expect(spot).toMatchObject({ closed: true, volume: '10', quoteVolume: '15' });
    const swap = candleOf(parser.parse(push('candle1m', 'BTC-USDT-SWAP', [[String(T), '1', '2', '0.5', '1.5', '1000', '10', '0']]), 1));
    expect(swap).toMatchObject({ closed: false, volume: '10' });
    expect('quoteVolume' in swap).toBe(false);
  });

  it('maps the canonical 1d to the UTC bar and refuses a bar that opens off the UTC boundary (a UTC+8 1D bar) as a parse error', () => {
    const { parser, refs, events } = setup();
    expect(refs[1]?.topic).toBe('{"channel":"candle1Dutc","instId":"BTC-USDT"}');
    // 16:00 UTC is 00:00 UTC+8: what the plain `1D` bar would carry.
    const out = parser.parse(push('candle1Dutc', 'BTC-USDT', [[String(DAY - 8 * 3_600_000), '1', '2', '0.5', '1.5', '10', '15', '15', '1']]), 1);
    expect(out).toBe(PARSE_ERROR);
    expect(parser.parseErrors).toBe(1);
    const reported = events.find((e) => e.type === 'parse.error');
    expect(reported?.venue).toBe('okx');
    expect(reported?.type === 'parse.error' && reported.reason).toMatch(/not on a 1d boundary/);
  });

  it('counts and skips malformed frames without throwing (garbage, truncation, confirm other than "0"/"1", a number where a string goes, bad UTF-8)', () => {
    const { parser } = setup();
    const good = push('candle1m', 'BTC-USDT', [[String(T), '1', '2', '0.5', '1.5', '10', '15', '15', '1']]).toString();
    const bad = [
      'not json',
      good.slice(0, -5),
      good.replace('"1"]]', '"true"]]'),
      good.replace('"1"]]', '"2"]]'),
      good.replace(`"${T}"`, String(T)),
      good.replace('"1.5","10"', '"1.5x","10"'),
      '{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}',
      '[1,2,3]',
      '{"hello":"world"}',
    ];
    for (const b of bad) expect(parser.parse(Buffer.from(b), 1)).toBe(PARSE_ERROR);
    expect(parser.parse(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 1)).toBe(PARSE_ERROR);
    expect(parser.parseErrors).toBe(bad.length + 1);
    // And the parser still reads the next good frame.
    expect(isCandle(parser.parse(Buffer.from(good), 1))).toBe(true);
  });

  it('tells a stream it did not subscribe from a broken frame', () => {
    const { parser } = setup();
    expect(parser.parse(push('candle1m', 'ETH-USDT', [[String(T), '1', '2', '0.5', '1.5', '10', '15', '15', '1']]), 1)).toBe(UNKNOWN_STREAM);
    expect(parser.unknownStreams).toBe(1);
    expect(parser.parseErrors).toBe(0);
  });

  it('reads the subscribe ack and the error event (a /public socket’s 64001 names the URL) and the 64008 notice as the rotation signal', () => {
    const { parser } = setup();
    expect(parser.parse(Buffer.from('{"id":"7","event":"subscribe","arg":{"channel":"candle1m","instId":"BTC-USDT"},"connId":"a4d3ae55"}'), 1)).toBe(CONTROL_REPLY);
    expect(parser.lastControlId).toBe('7');
    const migrated = `{"event":"error","code":"64001","msg":"This channel has been migrated to the '/business' URL. Please subscribe using the new URL.","connId":"a4d3ae55"}`;
    expect(parser.parse(Buffer.from(migrated), 1)).toBe(CONTROL_ERROR);
    expect(parser.lastControlError?.code).toBe(64001);
    expect(parser.lastControlError?.msg).toMatch(/'\/business' URL/);
    expect(parser.parse(Buffer.from('{"id":"1512","event":"error","code":"60012","msg":"Invalid request","connId":"a4d3ae55"}'), 1)).toBe(CONTROL_ERROR);
    expect(parser.lastControlId).toBe('1512');
    const notice = '{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}';
    expect(parser.parse(Buffer.from(notice), 1)).toBe(SERVER_SHUTDOWN);
    expect(parser.shutdownNotices).toBe(1);
    expect(parser.parse(Buffer.from('{"event":"channel-conn-count","channel":"orders","connCount":"2","connId":"abcd1234"}'), 1)).toBe(CONTROL_REPLY);
    expect(parser.parseErrors).toBe(0);
  });

  it('takes the newest row when a push carries several (the older one, if closed, is a gap REST fills)', () => {
    const { parser } = setup();
    const c = candleOf(
      parser.parse(
        push('candle1m', 'BTC-USDT', [
          [String(T), '1', '2', '0.5', '1.5', '10', '15', '15', '1'],
          [String(T + 60_000), '1.5', '2', '1', '1.7', '1', '1.7', '1.7', '0'],
        ]),
        1,
      ),
    );
    expect(c).toMatchObject({ openTime: T + 60_000, closed: false });
  });
});
