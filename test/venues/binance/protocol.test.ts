import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  CONTROL_ERROR,
  CONTROL_REPLY,
  KlineFrameParser,
  PARSE_ERROR,
  SERVER_SHUTDOWN,
  UNKNOWN_STREAM,
  isCandle,
  klineStreamName,
  type FrameOutcome,
} from '../../../src/venues/binance/protocol.ts';
import type { Candle } from '../../../src/core/candle.ts';
import { registerVenueStreams } from '../../../src/upstream/venue.ts';
import { binanceSpot } from '../../../src/venues/binance/spot.ts';
import type { StatusEvent } from '../../../src/core/status.ts';
import { StatusStream } from '../../../src/core/status.ts';
import { StreamRegistry } from '../../../src/core/streams.ts';
import { klineAt, klineEventJson, openKlineAt, type SimKline } from '../../../src/venues/binance/simulator/klines.ts';
import { mulberry32 } from '../../../src/simulator/random.ts';

const T0 = Date.UTC(2026, 10, 3, 12, 0);

function setup(now = { t: 0 }) {
  const registry = new StreamRegistry();
  const refs = registerVenueStreams(registry, binanceSpot, ['btcusdt', 'ethusdt', 'xrpusdt'], ['1m', '1s']);
  const status = new StatusStream();
  const events: StatusEvent[] = [];
  status.subscribe((e) => events.push(e));
  const parser = new KlineFrameParser({ venue: 'binance', registry, status, clock: { now: () => now.t, monotonic: () => now.t } });
  return { registry, refs, status, events, parser, now };
}

function combined(k: SimKline, E: number): string {
  return `{"stream":"${klineStreamName(k.s, k.i)}","data":${klineEventJson(k, E)}}`;
}

function expectExact(out: FrameOutcome, k: SimKline, E: number): Candle {
  if (!isCandle(out)) throw new Error(`expected a candle, got ${out.signal}`);
  expect(out.stream.name).toBe(klineStreamName(k.s, k.i));
  expect(out.stream.symbol).toBe(k.s);
  expect({
    t: out.openTime,
    T: out.closeTime,
    E: out.eventTime,
    x: out.closed,
    o: out.open,
    h: out.high,
    l: out.low,
    c: out.close,
    v: out.volume,
    q: out.quoteVolume,
    V: out.takerBuyBaseVolume,
    Q: out.takerBuyQuoteVolume,
    n: out.trades,
    f: out.firstTradeId,
    L: out.lastTradeId,
    B: out.ignore,
  }).toEqual({ t: k.t, T: k.T, E, x: k.x, o: k.o, h: k.h, l: k.l, c: k.c, v: k.v, q: k.q, V: k.V, Q: k.Q, n: k.n, f: k.f, L: k.L, B: k.B });
  expect(out.source).toBe('ws');
  return out;
}

/** Every parse the fuzz cases make goes through here: a throw fails the test. */
function safeParse(parser: KlineFrameParser, text: string | Buffer): FrameOutcome {
  let out: FrameOutcome | undefined;
  const frame = typeof text === 'string' ? Buffer.from(text) : text;
  expect(() => {
    out = parser.parse(frame, 1);
  }).not.toThrow();
  return out!;
}

describe('stream names', () => {
  it('builds lowercase names and registers UPPERCASE symbols under the binance venue', () => {
    const registry = new StreamRegistry();
    const refs = registerVenueStreams(registry, binanceSpot, ['BTCusdt', 'ethusdt'], ['1m', '1h']);
    expect(refs.map((r) => r.name)).toEqual(['btcusdt@kline_1m', 'btcusdt@kline_1h', 'ethusdt@kline_1m', 'ethusdt@kline_1h']);
    expect(refs[0]).toMatchObject({ venue: 'binance', symbol: 'BTCUSDT', interval: '1m' });
    expect(registry.get('binance', 'ethusdt@kline_1h')).toBe(refs[3]);
    expect(registerVenueStreams(registry, binanceSpot, ['btcusdt'], ['1m'])[0]).toBe(refs[0]);
  });
});

describe('KlineFrameParser', () => {
  it('extracts every field of a combined frame exactly, with raw = the data object byte for byte', () => {
    const { parser } = setup();
    for (const [sym, interval] of [
      ['btcusdt', '1m'],
      ['xrpusdt', '1s'],
      ['ethusdt', '1m'],
    ] as const) {
      const closed = klineAt(sym, interval, T0);
      const open = openKlineAt(sym, interval, T0, 0.4);
      for (const k of [closed, open]) {
        const E = k.t + 1234;
        const event = klineEventJson(k, E);
        const c = expectExact(parser.parse(Buffer.from(combined(k, E)), 7.5), k, E);
        expect(c.raw?.toString('utf8')).toBe(event);
        expect(c.receivedAt).toBe(7.5);
      }
    }
    expect(parser.slowPath).toBe(0);
    expect(parser.parseErrors).toBe(0);
  });

  it('serializes a wire candle with every field through JSON.stringify, lazy ones included', () => {
    const { parser } = setup();
    const k = klineAt('btcusdt', '1m', T0);
    const c = parser.parse(Buffer.from(combined(k, T0 + 60_001)), 3);
    const json = JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
    expect(json).toMatchObject({
      venue: 'binance', stream: 'btcusdt@kline_1m', openTime: k.t, closeTime: k.T, eventTime: T0 + 60_001, closed: true,
      open: k.o, high: k.h, low: k.l, close: k.c, volume: k.v, quoteVolume: k.q, takerBuyBaseVolume: k.V,
      takerBuyQuoteVolume: k.Q, trades: k.n, firstTradeId: k.f, lastTradeId: k.L, ignore: k.B, source: 'ws',
      raw: klineEventJson(k, T0 + 60_001),
    });
  });

  it('parses raw (unenveloped) kline events by symbol and interval', () => {
    const { parser } = setup();
    const k = klineAt('ethusdt', '1m', T0);
    const text = klineEventJson(k, T0 + 60_001);
    const c = expectExact(parser.parse(Buffer.from(text), 0), k, T0 + 60_001);
    expect(c.raw?.toString('utf8')).toBe(text);
    expect(parser.slowPath).toBe(0);
  });

  it('keeps decimal strings byte-exact (trailing zeros, long fractions, big integers)', () => {
    const { parser } = setup();
    const k: SimKline = {
      ...klineAt('btcusdt', '1m', T0),
      o: '0.00000100',
      c: '123456789012345678901234567890.10000000',
      h: '99999999999999999999.99999999',
      l: '0.00000000',
      v: '1000',
      B: '0',
    };
    expectExact(parser.parse(Buffer.from(combined(k, T0)), 0), k, T0);
  });

  it('accepts reordered keys and whitespace through the fallback, with the same fields', () => {
    const { parser } = setup();
    const k = klineAt('btcusdt', '1m', T0);
    const obj = JSON.parse(klineEventJson(k, T0 + 5)) as Record<string, unknown>;
    const reordered = { k: obj['k'], s: obj['s'], E: obj['E'], e: obj['e'] };
    const spaced = JSON.stringify({ data: reordered, stream: 'btcusdt@kline_1m' }, null, 2);
    const c = expectExact(parser.parse(Buffer.from(spaced), 0), k, T0 + 5);
    expect(JSON.parse(c.raw!.toString('utf8'))).toEqual(obj);
    expect(parser.slowPath).toBe(1);
    // Trailing whitespace and escaped characters in the stream name also go through the fallback.
    expectExact(parser.parse(Buffer.from(combined(k, T0 + 5) + '\n'), 0), k, T0 + 5);
    expectExact(parser.parse(Buffer.from(combined(k, T0 + 5).replace('btcusdt@kline', 'btcusd\\u0074@kline')), 0), k, T0 + 5);
    expect(parser.parseErrors).toBe(0);
  });

  it('yields a parse error for every truncation of a valid frame, and never throws', () => {
    const { parser } = setup();
    const k = openKlineAt('btcusdt', '1m', T0, 0.5);
    for (const text of [combined(k, T0 + 1), klineEventJson(k, T0 + 1)]) {
      for (let cut = 0; cut < text.length; cut++) {
        const out = safeParse(parser, text.slice(0, cut));
        expect(out, `cut at ${cut}: ${text.slice(0, cut)}`).toBe(PARSE_ERROR);
      }
    }
    expect(parser.parseErrors).toBe(combined(k, T0 + 1).length + klineEventJson(k, T0 + 1).length);
  });

  it('rejects wrong value types: numbers where strings are expected and vice versa', () => {
    const { parser } = setup();
    const k = klineAt('btcusdt', '1m', T0);
    const good = combined(k, T0);
    const mutations: Array<[string, string]> = [
      [`"o":"${k.o}"`, `"o":${k.o}`],
      [`"c":"${k.c}"`, `"c":${k.c}`],
      [`"v":"${k.v}"`, `"v":null`],
      [`"t":${k.t}`, `"t":"${k.t}"`],
      [`"n":${k.n}`, `"n":"${k.n}"`],
      [`"n":${k.n}`, `"n":-1`],
      [`"x":true`, `"x":"true"`],
      [`"x":true`, `"x":1`],
      [`"f":${k.f}`, `"f":1.5`],
      [`"E":${T0}`, `"E":1.5`],
      [`"i":"1m"`, `"i":"1h"`],
      [`"s":"BTCUSDT","k"`, `"s":"ETHUSDT","k"`],
      [`"e":"kline"`, `"e":"trade"`],
      [`"h":"${k.h}"`, `"h":"1e5"`],
      [`"h":"${k.h}"`, `"h":"abc"`],
      [`"h":"${k.h}"`, `"h":""`],
      [`"T":${k.T}`, `"T":${k.t - 1}`],
      [`"B":"${k.B}"`, `"B":0`],
    ];
    for (const [from, to] of mutations) {
      expect(good.includes(from), from).toBe(true);
      expect(safeParse(parser, good.replace(from, to)), to).toBe(PARSE_ERROR);
    }
    expect(parser.parseErrors).toBe(mutations.length);
  });

  it('rejects garbage, non-objects and huge frames without throwing', () => {
    const { parser } = setup();
    const huge = `{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"${'A'.repeat(2_000_000)}"}}`;
    for (const text of ['', ' ', 'null', '[]', '42', '"kline"', '{', '{}', '{"stream":1,"data":{}}', '\u0000\uffff', huge, '{"a":'.repeat(10_000)]) {
      expect(safeParse(parser, text)).toBe(PARSE_ERROR);
    }
    const rnd = mulberry32(7);
    const k = klineAt('btcusdt', '1m', T0);
    const base = combined(k, T0);
    for (let i = 0; i < 2000; i++) {
      // Flip one character of a valid frame: the result is either an exact candle or an error/signal.
      const pos = Math.floor(rnd() * base.length);
      const ch = String.fromCharCode(32 + Math.floor(rnd() * 95));
      const text = base.slice(0, pos) + ch + base.slice(pos + 1);
      const out = safeParse(parser, text);
      if (isCandle(out)) {
        // Only a no-op flip (or an equivalent JSON) may produce a candle, and then it is the exact one.
        const expected = JSON.parse(text) as { data: { E: number; k: SimKline } };
        expect(out.eventTime).toBe(expected.data.E);
        expect(out.open).toBe(expected.data.k.o);
        expect(out.close).toBe(expected.data.k.c);
        expect(out.trades).toBe(expected.data.k.n);
      }
    }
  });

  it('survives 2000 byte-level mutations (any byte value, non-ASCII included): a candle only when the bytes are valid JSON of the same kline', () => {
    const { parser } = setup();
    const rnd = mulberry32(11);
    const base = Buffer.from(combined(openKlineAt('ethusdt', '1m', T0, 0.7), T0 + 9));
    for (let i = 0; i < 2000; i++) {
      const frame = Buffer.from(base);
      frame[Math.floor(rnd() * frame.length)] = Math.floor(rnd() * 256);
      const out = safeParse(parser, frame);
      if (isCandle(out)) {
        expect(isUtf8(frame)).toBe(true);
        const expected = JSON.parse(frame.toString('utf8')) as { data: { E: number; k: SimKline } };
        expect([out.eventTime, out.open, out.high, out.close, out.ignore, out.trades]).toEqual([
          expected.data.E,
          expected.data.k.o,
          expected.data.k.h,
          expected.data.k.c,
          expected.data.k.B,
          expected.data.k.n,
        ]);
      }
    }
  });

  it('counts a frame that is not valid UTF-8 as a parse error, and decodes valid non-ASCII through the fallback', () => {
    const { parser, events } = setup();
    const k = { ...klineAt('btcusdt', '1m', T0), B: 'IGNORE' };
    const good = combined(k, T0);
    const at = Buffer.from(good).indexOf('IGNORE');
    for (const bad of [[0x80], [0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xff]]) {
      const frame = Buffer.concat([Buffer.from(good).subarray(0, at), Buffer.from(bad), Buffer.from(good).subarray(at + 6)]);
      expect(safeParse(parser, frame), `bytes ${bad.join(',')}`).toBe(PARSE_ERROR);
    }
    expect(parser.parseErrors).toBe(6);
    expect(events[0]).toMatchObject({ type: 'parse.error', reason: 'invalid UTF-8' });
    const c = expectExact(parser.parse(Buffer.from(good.replace('IGNORE', 'ïgnøre €')), 0), { ...k, B: 'ïgnøre €' }, T0);
    expect(c.raw?.toString('utf8')).toBe(klineEventJson({ ...k, B: 'ïgnøre €' }, T0));
    expect(parser.slowPath).toBe(7);
  });

  it("keeps an open update's raw as a view of the frame (no copy) and copies a closed candle's, decoding strings once", () => {
    const { parser } = setup();
    const open = openKlineAt('btcusdt', '1m', T0, 0.25);
    const frame = Buffer.from(`xx${combined(open, T0 + 7)}yy`).subarray(2, -2);
    const c = parser.parse(frame, 0);
    if (!isCandle(c)) throw new Error('expected a candle');
    expect(c.raw!.buffer).toBe(frame.buffer);
    expect(c.raw!.toString('utf8')).toBe(klineEventJson(open, T0 + 7));
    expect(c.raw).toBe(c.raw);
    expect(c.open).toBe(open.o);
    expect(c.open).toBe(c.open);
    const closedK = klineAt('btcusdt', '1m', T0);
    const closedText = combined(closedK, T0 + 60_000);
    const closedFrame = Buffer.alloc(closedText.length, closedText); // its own memory, not the shared pool
    const closed = parser.parse(closedFrame, 0);
    if (!isCandle(closed)) throw new Error('expected a candle');
    expect(closed.raw!.buffer).not.toBe(closedFrame.buffer);
    closedFrame.fill(0x20); // the socket's chunk is reused or freed: the held closed candle is unaffected
    expectExact(closed, closedK, T0 + 60_000);
    expect(closed.raw!.toString('utf8')).toBe(klineEventJson(closedK, T0 + 60_000));
  });

  it('counts unknown streams without reporting them as errors', () => {
    const { parser, events } = setup();
    const k = klineAt('solusdt', '1m', T0);
    expect(parser.parse(Buffer.from(combined(k, T0)), 0)).toBe(UNKNOWN_STREAM);
    expect(parser.parse(Buffer.from(klineEventJson(k, T0)), 0)).toBe(UNKNOWN_STREAM);
    expect(parser.parse(Buffer.from('{"stream":"btcusdt@trade","data":{"e":"trade"}}'), 0)).toBe(UNKNOWN_STREAM);
    expect(parser.unknownStreams).toBe(3);
    expect(parser.parseErrors).toBe(0);
    expect(events).toEqual([]);
  });

  it('recognises serverShutdown in raw and combined form', () => {
    const { parser } = setup();
    expect(parser.parse(Buffer.from('{"e":"serverShutdown","E":1770123456789}'), 0)).toBe(SERVER_SHUTDOWN);
    expect(parser.parse(Buffer.from('{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}'), 0)).toBe(SERVER_SHUTDOWN);
    expect(parser.parse(Buffer.from('{ "E": 1, "e": "serverShutdown" }'), 0)).toBe(SERVER_SHUTDOWN);
    expect(parser.shutdownNotices).toBe(3);
  });

  it('recognises control replies and errors with their ids', () => {
    const { parser } = setup();
    expect(parser.parse(Buffer.from('{"result":null,"id":7}'), 0)).toBe(CONTROL_REPLY);
    expect(parser.lastControlId).toBe(7);
    expect(parser.parse(Buffer.from('{"id":"abc","result":["btcusdt@kline_1m"]}'), 0)).toBe(CONTROL_REPLY);
    expect(parser.lastControlId).toBe('abc');
    expect(parser.parse(Buffer.from('{"error":{"code":2,"msg":"Invalid request"},"id":null}'), 0)).toBe(CONTROL_ERROR);
    expect(parser.lastControlError).toEqual({ code: 2, msg: 'Invalid request' });
    expect(parser.parse(Buffer.from('{"error":"nope","id":1}'), 0)).toBe(PARSE_ERROR);
  });

  it('reports parse errors at most once per second, with the count of suppressed ones', () => {
    const { parser, events, now } = setup();
    for (let i = 0; i < 500; i++) {
      now.t = i; // 500 errors within half a second
      parser.parse(Buffer.from('garbage'), 0);
    }
    now.t = 1000;
    parser.parse(Buffer.from('{"x":1}'), 0);
    const reports = events.filter((e) => e.type === 'parse.error');
    expect(reports).toHaveLength(2);
    expect(reports[1]).toMatchObject({ venue: 'binance', reason: expect.stringContaining('+499 more') as unknown, sample: '{"x":1}' });
    expect(parser.parseErrors).toBe(501);
  });
});

