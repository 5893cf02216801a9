/**
 * The Bybit frame parser (src/venues/bybit/protocol.ts) on frames copied from bybit-exchange/docs
 * @072c197: the kline message of `docs/v5/websocket/public/kline.mdx`, the subscribe and pong replies
 * of `docs/v5/websocket/wss-authentication.mdx`. Several candles in one frame come out in open-time
 * order through `more()`; a bad frame is counted and skipped whole, never thrown.
 */
import { describe, expect, it } from 'vitest';
import { StatusStream, type StatusEvent } from '../../../src/core/status.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { CONTROL_ERROR, CONTROL_REPLY, PARSE_ERROR, UNKNOWN_STREAM, isCandle, registerVenueStreams, type FrameOutcome } from '../../../src/upstream/venue.ts';
import { bybitLinear, bybitSpot } from '../../../src/venues/bybit/market.ts';
import { BybitFrameParser } from '../../../src/venues/bybit/protocol.ts';
import { klinePayload } from '../../../src/relay/protocol.ts';
import type { Candle } from '../../../src/core/candle.ts';

/** kline.mdx "Response Example", verbatim. */
const DOC_FRAME = `{
    "topic": "kline.5.BTCUSDT",
    "data": [
        {
            "start": 1672324800000,
            "end": 1672325099999,
            "interval": "5",
            "open": "16649.5",
            "close": "16677",
            "high": "16677",
            "low": "16608",
            "volume": "2.081",
            "turnover": "34666.4005",
            "confirm": false,
            "timestamp": 1672324988882
        }
    ],
    "ts": 1672324988882,
    "type": "snapshot"
}`;

function kline(start: number, confirm: boolean, close = '16677'): string {
  return `{"start":${start},"end":${start + 59_999},"interval":"1","open":"16649.5","close":"${close}","high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":${confirm},"timestamp":${start + 1000}}`;
}

function frame(topic: string, ...data: string[]): Buffer {
  return Buffer.from(`{"topic":"${topic}","data":[${data.join(',')}],"ts":1672325100001,"type":"snapshot"}`);
}

function setup(intervals: Parameters<typeof bybitSpot.streams>[1] = ['1m', '5m']) {
  const registry = new StreamRegistry();
  const refs = registerVenueStreams(registry, bybitSpot, ['BTCUSDT'], intervals);
  // The linear venue's stream of the same topic must never be confused with spot's.
  const linear = registerVenueStreams(registry, bybitLinear, ['BTCUSDT'], intervals);
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  let now = 0;
  const parser = new BybitFrameParser({ venue: 'bybit-spot', registry, status, clock: { now: () => now, monotonic: () => now } });
  return {
    parser,
    refs,
    linear,
    events,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** Every candle of one frame: parse, then more() until it is done. */
function all(parser: BybitFrameParser, bytes: Buffer): { first: FrameOutcome; candles: Candle[] } {
  const first = parser.parse(bytes, 42);
  const candles: Candle[] = [];
  if (isCandle(first)) {
    candles.push(first);
    for (let c = parser.more(); c !== undefined; c = parser.more()) candles.push(c);
  }
  return { first, candles };
}

describe('Bybit frame parser', () => {
  it('reads the documented kline message into a canonical candle of its topic’s stream: confirm is the closed flag, turnover the quote volume, no trade fields', () => {
    const { parser, refs } = setup();
    const { first, candles } = all(parser, Buffer.from(DOC_FRAME));
    expect(isCandle(first)).toBe(true);
    expect(candles).toHaveLength(1);
    const c = candles[0]!;
    expect(c.stream).toBe(refs[1]);
    expect(c.stream.name).toBe('bybit-spot:btcusdt@kline_5m');
    expect({ ...c, stream: c.stream.name }).toEqual({
      stream: 'bybit-spot:btcusdt@kline_5m',
      openTime: 1672324800000,
      closeTime: 1672325099999,
      eventTime: 1672324988882,
      closed: false,
      open: '16649.5',
      high: '16677',
      low: '16608',
      close: '16677',
      volume: '2.081',
      quoteVolume: '34666.4005',
      source: 'ws',
      raw: undefined,
      receivedAt: 42,
    });
    expect(parser.parseErrors).toBe(0);
  });

  it('puts the candle on the relay in Binance’s kline shape with the canonical interval, Bybit’s strings as sent and null for what Bybit does not publish', () => {
    const { parser } = setup();
    const c = parser.parse(Buffer.from(DOC_FRAME), 0);
    if (!isCandle(c)) throw new Error('expected a candle');
    expect(JSON.parse(klinePayload(c, 0).toString())).toEqual({
      e: 'kline',
      E: 1672324988882,
      s: 'BTCUSDT',
      k: { t: 1672324800000, T: 1672325099999, s: 'BTCUSDT', i: '5m', f: null, L: null, o: '16649.5', c: '16677', h: '16677', l: '16608', v: '2.081', n: null, x: false, q: '34666.4005', V: null, Q: null, B: null },
    });
  });

  it('hands out every candle of a multi-candle frame once, in open-time order (the closed one before the next one’s first update)', () => {
    const { parser, refs } = setup();
    const t = 1672324800000;
    // Newer first on the wire: the parser must not deliver the next candle ahead of the closing one.
    const { candles } = all(parser, frame('kline.1.BTCUSDT', kline(t + 60_000, false, '1'), kline(t, true, '2'), kline(t + 60_000, false, '3')));
    expect(candles.map((c) => [c.openTime - t, c.closed, c.close])).toEqual([
      [0, true, '2'],
      [60_000, false, '1'],
      [60_000, false, '3'],
    ]);
    expect(candles.every((c) => c.stream === refs[0])).toBe(true);
    expect(parser.multiCandleFrames).toBe(1);
    // The next frame starts afresh: nothing of the previous one is left over.
    const { candles: next } = all(parser, frame('kline.1.BTCUSDT', kline(t + 120_000, false)));
    expect(next.map((c) => c.openTime - t)).toEqual([120_000]);
    expect(parser.more()).toBeUndefined();
  });

  it('looks streams up by topic within its own venue: another venue’s or an unsubscribed topic is an unknown stream, counted, not an error', () => {
    const { parser } = setup();
    expect(parser.parse(frame('kline.1.ETHUSDT', kline(1672324800000, true)), 0)).toBe(UNKNOWN_STREAM);
    expect(parser.parse(frame('kline.60.BTCUSDT', kline(1672322400000, true)), 0)).toBe(UNKNOWN_STREAM);
    expect(parser.unknownStreams).toBe(2);
    expect(parser.parseErrors).toBe(0);
  });

  it('counts and skips malformed frames whole, with a rate-limited parse.error event, and never throws', () => {
    const { parser, events, advance } = setup();
    const t = 1672324800000;
    const bad: string[] = [
      'not json',
      '[1,2]',
      '{"hello":1}',
      '{"topic":7,"data":[]}',
      // A number where Bybit writes strings (prices must stay byte-exact strings).
      frame('kline.1.BTCUSDT', kline(t, true).replace('"16649.5"', '16649.5')).toString(),
      // One good candle beside a bad one: neither gets through.
      frame('kline.1.BTCUSDT', kline(t, true), kline(t + 60_000, false).replace('"confirm":false', '"confirm":"no"')).toString(),
      // A candle of another interval on this topic, a start off the 1m grid, end before start.
      frame('kline.1.BTCUSDT', kline(t, true).replace('"interval":"1"', '"interval":"5"')).toString(),
      frame('kline.1.BTCUSDT', kline(t + 1, true)).toString(),
      frame('kline.1.BTCUSDT', kline(t, true).replace(`"end":${t + 59_999}`, `"end":${t - 1}`)).toString(),
      '{"topic":"kline.1.BTCUSDT","data":[],"ts":1,"type":"snapshot"}',
      '{"topic":"kline.1.BTCUSDT","data":[' + kline(t, true) + '],"ts":1,"type":"delta"}',
      '{"topic":"kline.1.BTCUSDT","data":[' + kline(t, true) + '],"ts":1',
      '{"op":7}',
    ];
    for (const b of bad) {
      const { first, candles } = all(parser, Buffer.from(b));
      expect(first, b).toBe(PARSE_ERROR);
      expect(candles).toEqual([]);
      expect(parser.more()).toBeUndefined();
    }
    // Invalid UTF-8 (the socket skips ws's validation).
    expect(parser.parse(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 0)).toBe(PARSE_ERROR);
    expect(parser.parseErrors).toBe(bad.length + 1);
    const reports = events.filter((e) => e.type === 'parse.error');
    expect(reports).toHaveLength(1);
    advance(1000);
    parser.parse(Buffer.from('garbage'), 0);
    const last = events.filter((e) => e.type === 'parse.error').at(-1);
    expect(last).toMatchObject({ type: 'parse.error', venue: 'bybit-spot', sample: 'garbage' });
    expect(last?.type === 'parse.error' ? last.reason : '').toContain(`(+${bad.length} more since the last report)`);
  });

  it('answers subscribe acks (spot and linear shapes) and stray pongs as control replies, a refusal as a control error with its reason', () => {
    const { parser } = setup();
    // Connect "Understanding the Subscription Response": public spot, then linear.
    expect(parser.parse(Buffer.from('{"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b","req_id":"10001","op":"subscribe"}'), 0)).toBe(CONTROL_REPLY);
    expect(parser.lastControlId).toBe('10001');
    expect(parser.parse(Buffer.from('{"success":true,"ret_msg":"","conn_id":"3cd84cb1-4d06-4a05-930a-2efe5fc70f0f","req_id":"","op":"subscribe"}'), 0)).toBe(CONTROL_REPLY);
    // "Pong message example of public channels" (linear), and the option-style pong.
    expect(parser.parse(Buffer.from('{"success":true,"ret_msg":"pong","conn_id":"465772b1-7630-4fdc-a492-e003e6f0f260","req_id":"","op":"ping"}'), 0)).toBe(CONTROL_REPLY);
    expect(parser.parse(Buffer.from('{"args":["1672916271846"],"op":"pong"}'), 0)).toBe(CONTROL_REPLY);
    expect(parser.parse(Buffer.from('{"success":false,"ret_msg":"error:handler not found","conn_id":"x","req_id":"7","op":"subscribe"}'), 0)).toBe(CONTROL_ERROR);
    expect(parser.lastControlId).toBe('7');
    expect(parser.lastControlError).toEqual({ code: -1, msg: 'subscribe: error:handler not found' });
    expect(parser.parseErrors).toBe(0);
  });
});
