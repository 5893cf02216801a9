import { describe, expect, it } from 'vitest';
import {
  envelope,
  envelopeFrame,
  envelopePrefix,
  jsonErrorOffset,
  klinePayload,
  lineColumn,
  parseControl,
  parseUpgradeUrl,
  serverShutdownPayload,
  textFrame,
} from '../../src/relay/protocol.ts';
import { BTC, rawText, restCandle, wsCandle } from './helpers.ts';

describe('relay protocol: upgrade URLs', () => {
  it('keeps + in stream names and decodes percent-encoded ones', () => {
    expect(parseUpgradeUrl('/stream?streams=btcusdt@kline_1d@+08:00/ethusdt@kline_1m')).toEqual({
      kind: 'ok',
      combined: true,
      streams: ['btcusdt@kline_1d@+08:00', 'ethusdt@kline_1m'],
      token: undefined,
    });
    expect(parseUpgradeUrl('/stream?streams=btcusdt%40kline_1d%40%2B08%3A00%2Fethusdt%40kline_1m')).toMatchObject({
      streams: ['btcusdt@kline_1d@+08:00', 'ethusdt@kline_1m'],
    });
    expect(parseUpgradeUrl('/ws/btcusdt%40kline_1m/ethusdt@kline_1m?token=a%2Bb')).toEqual({
      kind: 'ok',
      combined: false,
      streams: ['btcusdt@kline_1m', 'ethusdt@kline_1m'],
      token: 'a+b',
    });
  });

  it('accepts bare /ws and /stream and refuses other paths', () => {
    expect(parseUpgradeUrl('/ws')).toMatchObject({ kind: 'ok', combined: false, streams: [] });
    expect(parseUpgradeUrl('/ws/')).toMatchObject({ kind: 'ok', combined: false, streams: [] });
    expect(parseUpgradeUrl('/stream')).toMatchObject({ kind: 'ok', combined: true, streams: [] });
    expect(parseUpgradeUrl('/')).toEqual({ kind: 'not-found' });
    expect(parseUpgradeUrl('/wss/x')).toEqual({ kind: 'not-found' });
    expect(parseUpgradeUrl('/stream/x')).toEqual({ kind: 'not-found' });
    expect(parseUpgradeUrl('/ws/%zz')).toMatchObject({ kind: 'bad-request' });
    expect(parseUpgradeUrl('/stream?streams=a&timeUnit=MICROSECOND')).toMatchObject({ kind: 'bad-request' });
    expect(parseUpgradeUrl('/stream?streams=a&timeUnit=millisecond')).toMatchObject({ kind: 'ok' });
  });
});

describe('relay protocol: control messages', () => {
  it('parses every method with Binance ids (int64, alphanumeric ≤ 36, null)', () => {
    expect(parseControl('{"method":"SUBSCRIBE","params":["a","b"],"id":1}')).toEqual({
      ok: true,
      request: { method: 'SUBSCRIBE', params: ['a', 'b'], id: '1' },
    });
    expect(parseControl('{"method":"LIST_SUBSCRIPTIONS","id":9223372036854775807}')).toEqual({
      ok: true,
      request: { method: 'LIST_SUBSCRIPTIONS', id: '9223372036854775807' },
    });
    expect(parseControl('{"method":"LIST_SUBSCRIPTIONS","id":-9223372036854775808}')).toMatchObject({ ok: true });
    expect(parseControl(`{"method":"GET_PROPERTY","params":["combined"],"id":"${'a'.repeat(36)}"}`)).toMatchObject({ ok: true });
    expect(parseControl('{"method":"SET_PROPERTY","params":["combined",true],"id":null}')).toEqual({
      ok: true,
      request: { method: 'SET_PROPERTY', property: 'combined', value: true, id: 'null' },
    });
  });

  it.each([
    ['{"method":"LIST_SUBSCRIPTIONS","id":9223372036854775808}', 'int64 overflow'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":1.5}', 'fraction'],
    [`{"method":"LIST_SUBSCRIPTIONS","id":"${'a'.repeat(37)}"}`, '37 characters'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":"a-b"}', 'non-alphanumeric'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":true}', 'boolean'],
    ['{"method":"LIST_SUBSCRIPTIONS"}', 'missing'],
  ])('rejects id %s (%s) with code 2 and id null', (text) => {
    const r = parseControl(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.error.code).toBe(2);
      expect(r.error.id).toBe('null');
    }
  });

  it('answers malformed JSON with code 3 and the line and column of the error', () => {
    const r = parseControl('{\n  "method": "SUBSCRIBE",\n  x\n}');
    expect(r).toEqual({ ok: false, error: { error: { code: 3, msg: 'Invalid JSON: expected value at line 3 column 3' }, id: 'null' } });
    const eof = parseControl('{"method":');
    expect(eof.ok ? '' : eof.error.error.msg).toBe('Invalid JSON: expected value at line 1 column 10');
    const first = parseControl('hello');
    expect(first.ok ? '' : first.error.error.msg).toBe('Invalid JSON: expected value at line 1 column 1');
  });

  it('uses Binance messages for unknown and missing methods, too many parameters and properties', () => {
    const msg = (t: string): [number, string] => {
      const r = parseControl(t);
      return r.ok ? [-1, ''] : [r.error.error.code, r.error.error.msg];
    };
    expect(msg('{"method":"SUBSCRIBEX","params":[],"id":1}')).toEqual([
      2,
      'Invalid request: unknown variant `SUBSCRIBEX`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 22',
    ]);
    expect(msg('{"params":[],"id":1}')).toEqual([2, 'Invalid request: missing field `method` at line 1 column 20']);
    expect(msg('{"method":"SET_PROPERTY","params":["combined",true,1],"id":1}')).toEqual([2, 'Invalid request: too many parameters']);
    expect(msg('{"method":"GET_PROPERTY","params":["combined",1],"id":1}')).toEqual([2, 'Invalid request: too many parameters']);
    expect(msg('{"method":"GET_PROPERTY","params":["speed"],"id":1}')).toEqual([0, 'Unknown property']);
    expect(msg('{"method":"GET_PROPERTY","params":[7],"id":1}')).toEqual([2, 'Invalid request: property name must be a string']);
    expect(msg('{"method":"SET_PROPERTY","params":["combined","yes"],"id":1}')).toEqual([1, 'Invalid value type: expected Boolean']);
    expect(msg('{"method":"SUBSCRIBE","params":"btcusdt@kline_1m","id":1}')[0]).toBe(2);
    expect(msg('{"method":"SUBSCRIBE","id":1}')[0]).toBe(2);
    expect(msg('[1,2]')[0]).toBe(2);
  });

  it('finds JSON error offsets without recursing (deep nesting cannot overflow the stack)', () => {
    expect(jsonErrorOffset('{"a":[1,2,{"b":null}]}')).toBe(-1);
    expect(jsonErrorOffset('[1,]')).toBe(3);
    expect(jsonErrorOffset('"\\q"')).toBe(2); // the bad escape character
    expect(jsonErrorOffset(`${'['.repeat(100_000)}x`)).toBe(100_000);
    expect(lineColumn('ab\ncd', 4)).toEqual({ line: 2, column: 2 });
  });
});

describe('relay protocol: payloads', () => {
  it('forwards a Binance candle raw bytes unchanged, framed directly (no re-encoding)', () => {
    const c = wsCandle(BTC);
    expect(klinePayload(c, 1)).toBe(c.raw);
    expect(envelope(BTC.name, rawText(c))).toBe(`{"stream":"btcusdt@kline_1m","data":${rawText(c)}}`);
    const frame = envelopeFrame(envelopePrefix(BTC.name), klinePayload(c, 1));
    expect(frame[0]).toBe(0x81);
    expect(frame.subarray(4).toString('utf8')).toBe(`{"stream":"btcusdt@kline_1m","data":${rawText(c)}}`);
    expect(frame.readUInt16BE(2)).toBe(frame.length - 4);
  });

  it('serializes a REST-recovered candle in Binance key order with f/L -1 and E = send time', () => {
    const c = restCandle(BTC, 1_700_000_040_000);
    const text = klinePayload(c, 1_700_000_123_456).toString('utf8');
    expect(text).toBe(
      '{"e":"kline","E":1700000123456,"s":"BTCUSDT","k":{"t":1700000040000,"T":1700000099999,"s":"BTCUSDT","i":"1m",' +
        '"f":-1,"L":-1,"o":"27000.01000000","c":"27050.00000000","h":"27100.00000000","l":"26900.50000000",' +
        '"v":"12.34500000","n":42,"x":true,"q":"333333.33000000","V":"6.00000000","Q":"162000.00000000","B":"0"}}',
    );
    const parsed = JSON.parse(text) as { k: object };
    expect(Object.keys(parsed)).toEqual(['e', 'E', 's', 'k']);
    expect(Object.keys(parsed.k)).toEqual(['t', 'T', 's', 'i', 'f', 'L', 'o', 'c', 'h', 'l', 'v', 'n', 'x', 'q', 'V', 'Q', 'B']);
  });

  it('builds serverShutdown in raw and combined forms', () => {
    expect(serverShutdownPayload(5, false)).toBe('{"e":"serverShutdown","E":5}');
    expect(serverShutdownPayload(5, true)).toBe('{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":5}}');
  });

  it('frames text with 7-bit, 16-bit and 64-bit lengths', () => {
    for (const len of [0, 125, 126, 65_535, 65_536, 70_000]) {
      const f = textFrame('x'.repeat(len));
      expect(f[0]).toBe(0x81);
      const header = len < 126 ? 2 : len < 65_536 ? 4 : 10;
      expect(f.length).toBe(header + len);
      const declared = len < 126 ? f[1] : len < 65_536 ? f.readUInt16BE(2) : Number(f.readBigUInt64BE(2));
      expect(declared).toBe(len);
    }
    expect(textFrame('é').subarray(2).toString('utf8')).toBe('é');
    expect(textFrame('a', Buffer.from('é'), 'b').subarray(2).toString('utf8')).toBe('aéb');
  });
});
