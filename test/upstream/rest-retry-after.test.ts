import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/core/retry-after.ts';

const NOW = Date.UTC(1994, 10, 6, 8, 49, 0); // Sun, 06 Nov 1994 08:49:00 GMT

describe('Retry-After, one parser for every path (RFC 9110 §10.2.3)', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 7 ', NOW)).toBe(7000);
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter(['3', '60'], NOW)).toBe(3000); // repeated header: the first one
  });

  it('reads decimal seconds as seconds, rounded up to whole ms', () => {
    expect(parseRetryAfter('1.5', NOW)).toBe(1500);
    expect(parseRetryAfter('0.0004', NOW)).toBe(1);
  });

  it('reads an HTTP-date in the future, in all three forms, as the time left until then', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(37_000);
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(37_000);
    expect(parseRetryAfter('Sun Nov  6 08:49:37 1994', NOW)).toBe(37_000);
  });

  it('reads an HTTP-date in the past as no wait at all', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:48:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 1970 00:00:00 GMT', NOW)).toBe(0);
  });

  it('returns undefined for an absent or unreadable value, so the caller uses its own default', () => {
    for (const v of [undefined, '', '   ', 'soon', '-5', '1e3', 'Infinity', '0x10', 'Sun, 06 Nov 1994', '1994-11-06T08:49:37Z', 'Sun, 32 Foo 1994 08:49:37 GMT']) {
      expect(parseRetryAfter(v, NOW), String(v)).toBeUndefined();
    }
    expect(parseRetryAfter([], NOW)).toBeUndefined();
  });
});
