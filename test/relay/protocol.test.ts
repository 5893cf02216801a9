import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  envelope,
  envelopeFrame,
  envelopePrefix,
  errorReply,
  jsonErrorOffset,
  klinePayload,
  lineColumn,
  MAX_PARAMS,
  MESSAGE_VALUE_MAX,
  parseControl,
  parseUpgradeUrl,
  quoteForMessage,
  serverShutdownPayload,
  textFrame,
  type ParseResult,
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

/** The error of a refused frame as [code, msg, id], or undefined if it was accepted. */
function refusal(r: ParseResult): [number, string, string] | undefined {
  return r.ok ? undefined : [r.error.error.code, r.error.error.msg, r.error.id];
}

const UUID = 'f9dab9aa-db42-476a-98f8-f587080ba4d1';
/** Just under the 64 KiB inbound frame limit. */
const FRAME_LIMIT = 64 * 1024;

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

  it('accepts the ids Binance accepts: UUIDs and other ≤ 36-character strings of letters, digits, - and _', () => {
    // binance-sdk-spot (Binance's own Python SDK) sends a UUID as the id of every request.
    expect(parseControl(`{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"],"id":"${UUID}"}`)).toEqual({
      ok: true,
      request: { method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: `"${UUID}"` },
    });
    for (const id of ['a_b', '-', '_', 'A-Z_a-z_0-9', '-'.repeat(36), `${'_'.repeat(35)}x`]) {
      expect(parseControl(`{"method":"LIST_SUBSCRIPTIONS","id":"${id}"}`)).toEqual({ ok: true, request: { method: 'LIST_SUBSCRIPTIONS', id: `"${id}"` } });
    }
    // An escaped letter is the letter: the id is echoed as JSON.parse reads it.
    expect(parseControl('{"method":"LIST_SUBSCRIPTIONS","id":"\\u0041-1"}')).toMatchObject({ request: { id: '"A-1"' } });
  });

  it('accepts a request without an id and answers it with id null, as Binance does', () => {
    expect(parseControl('{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"]}')).toEqual({
      ok: true,
      request: { method: 'SUBSCRIBE', params: ['btcusdt@kline_1m'], id: 'null' },
    });
    expect(parseControl('{"method":"LIST_SUBSCRIPTIONS"}')).toEqual({ ok: true, request: { method: 'LIST_SUBSCRIPTIONS', id: 'null' } });
  });

  it('echoes integer ids digit for digit past 2^53, whatever comes before or around them', () => {
    const id = (t: string): string | undefined => {
      const r = parseControl(t);
      return r.ok ? r.request.id : undefined;
    };
    expect(id('{"method":"LIST_SUBSCRIPTIONS","id":9007199254740993}')).toBe('9007199254740993'); // 2^53 + 1
    expect(id('{"method":"LIST_SUBSCRIPTIONS","id":-9223372036854775807}')).toBe('-9223372036854775807');
    expect(id('{ "id" : 9223372036854775806 , "method" : "LIST_SUBSCRIPTIONS" }')).toBe('9223372036854775806');
    // Duplicate keys: the last one counts, as JSON.parse keeps it.
    expect(id('{"id":1,"method":"LIST_SUBSCRIPTIONS","id":9223372036854775805}')).toBe('9223372036854775805');
    // Nested ids, and "id" inside strings, are not the request's id.
    expect(id('{"method":"SUBSCRIBE","params":["\\"id\\":5","id"],"x":{"id":9223372036854775801},"id":9223372036854775802}')).toBe(
      '9223372036854775802',
    );
    expect(id('{"x":[{"id":9223372036854775801}],"id":9223372036854775803,"y":[[{"id":1}]],"method":"LIST_SUBSCRIPTIONS"}')).toBe(
      '9223372036854775803',
    );
    // A key written with escapes is still `id`.
    expect(id('{"method":"LIST_SUBSCRIPTIONS","\\u0069d":9223372036854775804}')).toBe('9223372036854775804');
    // After a 64 KiB-sized params list, long keys, long strings and deep nesting.
    const tail = ',"id":9223372036854775800}';
    const names = Array.from({ length: 1000 }, (_, i) => `"s${i}"`).join(',');
    expect(id(`{"method":"SUBSCRIBE","params":[${names}]${tail}`)).toBe('9223372036854775800');
    expect(id(`{"method":"LIST_SUBSCRIPTIONS","${'k'.repeat(5000)}":"${'v\\"'.repeat(5000)}","n":[${'['.repeat(5000)}"]"${']'.repeat(5000)}]${tail}`)).toBe(
      '9223372036854775800',
    );
  });

  it.each([
    ['{"method":"LIST_SUBSCRIPTIONS","id":9223372036854775808}', 'int64 overflow'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":-9223372036854775809}', 'int64 underflow'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":92233720368547758070}', '20 digits'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":1.5}', 'fraction'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":1.0}', 'float that is an integer'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":1e3}', 'exponent'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":1e400}', 'infinite'],
    [`{"method":"LIST_SUBSCRIPTIONS","id":"${'a'.repeat(37)}"}`, '37 characters'],
    [`{"method":"LIST_SUBSCRIPTIONS","id":"${UUID}0"}`, 'a UUID and one more character'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":""}', 'empty string'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":"a.b"}', 'a dot'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":"a b"}', 'a space'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":"a:b"}', 'a colon'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":"é"}', 'a non-ASCII letter'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":true}', 'boolean'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":{"a":1}}', 'object'],
    ['{"method":"LIST_SUBSCRIPTIONS","id":[1]}', 'array'],
  ])('refuses id %s (%s) with code 2 and id null', (text) => {
    const r = refusal(parseControl(text));
    expect(r).toBeDefined();
    expect(r?.[0]).toBe(2);
    expect(r?.[1]).toMatch(/request ID must be/);
    expect(r?.[2]).toBe('null');
  });

  it.each([
    ['{"method":"FROBNICATE","params":[],"id":101}', '101', 2, /^Invalid request: unknown variant `FROBNICATE`/],
    ['{"method":7,"id":106}', '106', 2, /method must be a string/],
    ['{"method":null,"id":"m-1"}', '"m-1"', 2, /method must be a string/],
    ['{"params":[],"id":"x_1"}', '"x_1"', 2, /missing field `method`/],
    ['{"method":"SUBSCRIBE","id":102}', '102', 2, /missing field `params`/],
    ['{"method":"SUBSCRIBE","params":"btcusdt@kline_1m","id":103}', '103', 2, /params must be an array/],
    ['{"method":"SUBSCRIBE","params":[1],"id":104}', '104', 2, /stream names must be strings/],
    ['{"method":"LIST_SUBSCRIPTIONS","params":["a"],"id":105}', '105', 2, /too many parameters/],
    ['{"method":"SET_PROPERTY","params":["combined",true,1],"id":107}', '107', 2, /too many parameters/],
    ['{"method":"GET_PROPERTY","params":[7],"id":108}', '108', 2, /property name must be a string/],
    ['{"method":"GET_PROPERTY","params":["speed"],"id":109}', '109', 0, /^Unknown property$/],
    ['{"method":"SET_PROPERTY","params":["combined","yes"],"id":110}', '110', 1, /^Invalid value type: expected Boolean$/],
    [`{"method":"FROBNICATE","id":"${UUID}"}`, `"${UUID}"`, 2, /unknown variant/],
    ['{"method":"FROBNICATE","id":9223372036854775807}', '9223372036854775807', 2, /unknown variant/],
  ])('an error for %s carries the frame id %s', (text, id, code, msg) => {
    const r = refusal(parseControl(text));
    expect(r?.[2]).toBe(id);
    expect(r?.[0]).toBe(code);
    expect(r?.[1]).toMatch(msg);
  });

  it('answers id null only when the frame is not a JSON object or its id is invalid', () => {
    expect(refusal(parseControl('{"method":"FROBNICATE","id":101'))).toEqual([3, 'Invalid JSON: expected value at line 1 column 31', 'null']);
    expect(refusal(parseControl('[{"method":"LIST_SUBSCRIPTIONS","id":101}]'))?.[2]).toBe('null');
    expect(refusal(parseControl('{"method":"FROBNICATE","id":1.5}'))?.[2]).toBe('null');
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
    // The position is the top-level method's, not a nested one's.
    expect(msg('{"x":{"method":"SUBSCRIBE"},\n "method": "NOPE"}')[1]).toMatch(/unknown variant `NOPE`, .* at line 2 column 17$/);
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

describe('relay protocol: parse cost', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('parses a 64 KiB frame with one plain JSON.parse, no reviver walking the frame', () => {
    const parse = vi.spyOn(JSON, 'parse');
    const names = Array.from({ length: 1000 }, (_, i) => `"s${i}@kline_1m"`).join(',');
    const text = `{"method":"SUBSCRIBE","params":[${names},${'1,'.repeat(10_000)}1],"x":"${'y'.repeat(29_000)}","id":9223372036854775807}`;
    expect(text.length).toBeLessThanOrEqual(FRAME_LIMIT);
    expect(refusal(parseControl(text))).toEqual([2, 'Invalid request: too many parameters', '9223372036854775807']);
    const whole = parse.mock.calls.filter((args) => args[0] === text);
    expect(whole).toHaveLength(1);
    expect(whole[0]).toHaveLength(1); // no reviver
  });

  it('refuses more stream names than a connection may hold as too many parameters, before looking at them', () => {
    const names = (n: number): string => Array.from({ length: n }, (_, i) => `"s${i}"`).join(',');
    expect(parseControl(`{"method":"SUBSCRIBE","params":[${names(MAX_PARAMS)}],"id":1}`)).toMatchObject({ ok: true });
    expect(refusal(parseControl(`{"method":"SUBSCRIBE","params":[${names(MAX_PARAMS + 1)}],"id":1}`))).toEqual([2, 'Invalid request: too many parameters', '1']);
    expect(refusal(parseControl(`{"method":"UNSUBSCRIBE","params":[${'1,'.repeat(MAX_PARAMS)}1],"id":2}`))).toEqual([2, 'Invalid request: too many parameters', '2']);
    // The relay's own per-client cap, when it differs.
    expect(refusal(parseControl(`{"method":"SUBSCRIBE","params":[${names(3)}],"id":3}`, { maxParams: 2 }))).toEqual([2, 'Invalid request: too many parameters', '3']);
    expect(parseControl(`{"method":"SUBSCRIBE","params":[${names(2000)}],"id":4}`, { maxParams: 5000 })).toMatchObject({ ok: true });
  });

  it('answers the same for adversarial 64 KiB frames as for their small forms', () => {
    const fill = (head: string, unit: string, sep: string, tail: string): string => {
      const n = Math.floor((FRAME_LIMIT - head.length - tail.length + sep.length) / (unit.length + sep.length));
      return head + Array.from({ length: n }, () => unit).join(sep) + tail;
    };
    const big = '9223372036854775807';
    const cases: [string, [number, string, string] | undefined][] = [
      [fill('{"method":"SUBSCRIBE","params":[', '1', ',', `],"id":${big}}`), [2, 'Invalid request: too many parameters', big]],
      [fill('{"method":"SUBSCRIBE","params":[', '{"id":1}', ',', `],"id":${big}}`), [2, 'Invalid request: too many parameters', big]],
      [fill('{', '"k":0', ',', `,"method":"LIST_SUBSCRIPTIONS","id":${big}}`), undefined],
      [fill('{', '"k":[]', ',', `,"method":"LIST_SUBSCRIPTIONS","id":${big}}`), undefined],
      [fill('{', '"id":1,"a":[{"id":2}]', ',', `,"method":"LIST_SUBSCRIPTIONS","id":${big}}`), undefined],
      [fill('{"id":1,', '"a":[{"id":2}],"id":3', ',', `,"method":"LIST_SUBSCRIPTIONS","id":${big},"z":{"id":4}}`), undefined],
      [fill('{', '"k":"id"', ',', `,"method":"LIST_SUBSCRIPTIONS","id":${big}}`), undefined],
      [fill('{"method":"LIST_SUBSCRIPTIONS",', '"id":1', ',', `,"id":${big}}`), undefined],
      [fill('{"method":"LIST_SUBSCRIPTIONS","x":"', '\\"', '', `","id":${big}}`), undefined],
      [fill('{"method":"LIST_SUBSCRIPTIONS","x":["', 'aaaaaaaaaaaaaa\\"', '', `"],"id":${big}}`), undefined],
      [fill('{"method":"', 'M', '', `","id":${big}}`), [2, '', big]],
    ];
    for (const [text, expected] of cases) {
      expect(text.length).toBeLessThanOrEqual(FRAME_LIMIT);
      const r = parseControl(text);
      if (expected === undefined) {
        expect(r).toEqual({ ok: true, request: { method: 'LIST_SUBSCRIPTIONS', id: big } });
      } else {
        const got = refusal(r);
        expect([got?.[0], got?.[2]]).toEqual([expected[0], expected[2]]);
        if (expected[1] !== '') expect(got?.[1]).toBe(expected[1]);
      }
    }
  });
});

describe('relay protocol: the top-level id in any frame', () => {
  /** mulberry32: a small seeded PRNG, so a failure names a reproducible frame. */
  function prng(seed: number): (n: number) => number {
    let a = seed;
    return (n) => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (((t ^ (t >>> 14)) >>> 0) % n + n) % n;
    };
  }

  it('finds the id JSON.parse keeps among nested ids, duplicate and escaped keys, and look-alike strings (2,000 seeded frames)', () => {
    const rnd = prng(20_260_811);
    const pick = <T,>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
    const ws = (): string => pick(['', '', '', ' ', '\n', '\t ', '  ']);
    const strings = ['"a"', '""', '"id"', '"\\"id\\":7"', '"[{\\"id\\":8}]"', '"\\\\"', `"${'s'.repeat(100)}"`, '"\\u0069d"', '"x\\"y"', '"}]"'];
    const idKeys = ['"id"', '"\\u0069d"', '"i\\u0064"'];
    const otherKeys = ['"x"', '"param"', '"idx"', '"i"', '"\\"id\\""', `"${'k'.repeat(80)}"`, '"method2"'];
    const value = (depth: number): string => {
      const r = rnd(10);
      if (depth > 3 || r < 5) return pick([...strings, '1', '-2.5e3', 'true', 'null', '9223372036854775807']);
      const n = rnd(4);
      if (r < 7) return `[${ws()}${Array.from({ length: n }, () => value(depth + 1)).join(`${ws()},${ws()}`)}${ws()}]`;
      const members = Array.from({ length: n }, () => `${pick([...idKeys, ...otherKeys])}${ws()}:${ws()}${value(depth + 1)}`);
      return `{${ws()}${members.join(`${ws()},${ws()}`)}${ws()}}`;
    };
    let withId = 0;
    for (let frame = 0; frame < 2000; frame++) {
      const members: string[] = ['"method":"LIST_SUBSCRIPTIONS"'];
      for (let m = rnd(8); m >= 0; m--) {
        if (rnd(3) === 0) {
          // A top-level id: an int64 whose last digits are unique, so a wrong pick shows.
          const id = `92233720368547${String(frame * 10 + m).padStart(5, '0')}`;
          members.push(`${pick(idKeys)}${ws()}:${ws()}${id}`);
        } else {
          members.push(`${pick(otherKeys)}${ws()}:${ws()}${value(0)}`);
        }
      }
      members.sort(() => rnd(3) - 1);
      // The expected id is the last top-level id in the final order.
      const ids = members.filter((m) => idKeys.some((k) => m.startsWith(k)));
      const expected = ids.length === 0 ? 'null' : (/-?\d+$/.exec(ids[ids.length - 1]!)?.[0] ?? 'null');
      if (ids.length > 0) withId++;
      const text = `${ws()}{${ws()}${members.join(`${ws()},${ws()}`)}${ws()}}${ws()}`;
      const r = parseControl(text);
      expect(r.ok ? r.request.id : `refused: ${r.error.error.msg}`, text).toBe(expected);
    }
    expect(withId).toBeGreaterThan(1000);
  });
});

describe('relay protocol: deep nesting', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const nest = (depth: number, inner = ''): string => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;

  it('answers valid JSON nested 10,000 deep with code 2 under its id, not "Invalid JSON"', () => {
    expect(refusal(parseControl(`{"method":"SUBSCRIBE","params":${nest(10_000)},"id":7}`))).toEqual([2, 'Invalid request: stream names must be strings', '7']);
    expect(refusal(parseControl(`{"method":"SUBSCRIBE","params":[${nest(10_000)}],"id":"deep-1"}`))?.slice(0, 3)).toEqual([
      2,
      'Invalid request: stream names must be strings',
      '"deep-1"',
    ]);
    expect(refusal(parseControl(`{"method":"GET_PROPERTY","params":${nest(10_000, '"combined"')},"id":9223372036854775807}`))).toEqual([
      2,
      'Invalid request: property name must be a string',
      '9223372036854775807',
    ]);
    // Deep nesting in a field the relay ignores does not spoil a valid request.
    expect(parseControl(`{"method":"LIST_SUBSCRIPTIONS","x":${nest(30_000)},"id":8}`)).toEqual({ ok: true, request: { method: 'LIST_SUBSCRIPTIONS', id: '8' } });
  });

  it('still answers invalid JSON nested deep with code 3 and its line and column', () => {
    expect(refusal(parseControl(`{"method":"SUBSCRIBE","params":${'['.repeat(10_000)}x${']'.repeat(10_000)},"id":7}`))).toEqual([
      3,
      'Invalid JSON: expected value at line 1 column 10032',
      'null',
    ]);
    expect(refusal(parseControl(`{"method":"SUBSCRIBE",\n"params":${nest(10_000)}],"id":7}`))).toEqual([3, 'Invalid JSON: expected value at line 2 column 20010', 'null']);
  });

  it('answers valid JSON that JSON.parse itself refuses with code 2 under the frame id', () => {
    // V8 builds any nesting a 64 KiB frame can hold; should a runtime give up on valid JSON (stack,
    // memory), the client is still told under its id, and not that its JSON is invalid.
    vi.spyOn(JSON, 'parse').mockImplementationOnce(() => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    expect(refusal(parseControl(`{"method":"SUBSCRIBE","params":${nest(100)},"id":9223372036854775807}`))).toEqual([
      2,
      'Invalid request: the frame is nested too deeply to be read',
      '9223372036854775807',
    ]);
  });
});

describe('relay protocol: echoed input', () => {
  it('quotes a value for a message in backticks, cut after 100 characters with a marker, and not JSON-escaped', () => {
    expect(quoteForMessage('btcusdt@kline_1m')).toBe('`btcusdt@kline_1m`');
    expect(quoteForMessage('a"b\\c\nd')).toBe('`a"b\\c\nd`');
    const long = 'x'.repeat(64 * 1024);
    const q = quoteForMessage(long);
    expect(q).toBe(`\`${'x'.repeat(MESSAGE_VALUE_MAX)}…\` (65536 characters)`);
    expect(quoteForMessage('y'.repeat(MESSAGE_VALUE_MAX))).toBe(`\`${'y'.repeat(MESSAGE_VALUE_MAX)}\``);
    // Never half of a surrogate pair: the cut falls before it.
    const emoji = `${'z'.repeat(MESSAGE_VALUE_MAX - 1)}😀tail`;
    expect(quoteForMessage(emoji)).toBe(`\`${'z'.repeat(MESSAGE_VALUE_MAX - 1)}…\` (${emoji.length} characters)`);
  });

  it('cuts a long unknown method short in its error and escapes it once in the reply', () => {
    const method = `${'M'.repeat(60_000)}"\n`;
    const text = `{"method":${JSON.stringify(method)},"id":5}`;
    const r = parseControl(text);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.error.msg.length).toBeLessThan(400);
    expect(r.error.error.msg).toContain(`unknown variant \`${'M'.repeat(MESSAGE_VALUE_MAX)}…\` (60002 characters)`);
    const reply = errorReply(r.error);
    expect(reply.length).toBeLessThan(500);
    expect(JSON.parse(reply)).toMatchObject({ error: { code: 2 }, id: 5 });
    // A short method with a quote and a newline: escaped exactly once on the wire.
    const odd = errorReply((parseControl('{"method":"A\\"B\\nC","id":6}') as { error: Parameters<typeof errorReply>[0] }).error);
    expect(odd).toContain('unknown variant `A\\"B\\nC`');
    expect((JSON.parse(odd) as { error: { msg: string } }).error.msg).toContain('unknown variant `A"B\nC`');
  });

  it('cuts a long timeUnit short in the upgrade refusal', () => {
    const r = parseUpgradeUrl(`/ws?timeUnit=${'q'.repeat(15_000)}`);
    expect(r.kind).toBe('bad-request');
    if (r.kind === 'bad-request') expect(r.reason).toBe(`invalid timeUnit \`${'q'.repeat(MESSAGE_VALUE_MAX)}…\` (15000 characters)`);
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
