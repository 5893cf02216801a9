/**
 * The venue registry (src/venues/index.ts) is the only place venues are listed, and nothing outside a
 * venue's own folder names it in code (issue 13: "nothing outside a venue's own folder names that
 * venue"). Comments may mention a venue as an example; code may not.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CANONICAL_INTERVALS } from '../../src/core/intervals.ts';
import { prefixedStreamName } from '../../src/upstream/venue.ts';
import { VENUES } from '../../src/venues/index.ts';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/**
 * Exempt: the venues themselves (their simulators' dialects included) and the demo that starts them.
 * The simulator engine (src/simulator/) is not exempt: it serves every venue and names none.
 */
const EXEMPT = ['venues/', 'demo/'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The code of a TypeScript file without its comments (strings kept: a venue id in a string is code). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

describe('the venue registry', () => {
  it('lists each venue once, with its own variables and a relay name scheme that cannot collide', () => {
    const ids = VENUES.map((v) => v.id);
    expect(new Set(ids).size).toBe(ids.length);
    const vars = VENUES.flatMap((v) => Object.values(v.env.vars));
    expect(new Set(vars).size).toBe(vars.length);
    for (const v of VENUES) {
      // Every interval a venue has is canonical.
      for (const i of Object.keys(v.env.intervals)) expect(CANONICAL_INTERVALS).toContain(i);
      const [spec] = v.streams([v.env.defaults.symbols?.[0] ?? 'btcusdt'], ['1m']);
      expect(spec?.interval).toBe('1m');
    }
    expect(prefixedStreamName('binance-usdm', 'BTCUSDT', '1m')).toBe('binance-usdm:btcusdt@kline_1m');
  });

  it('is the only place outside the venues’ folders where a venue is named in code', () => {
    const names = VENUES.flatMap((v) => [v.id, ...v.id.split('-')]).map((n) => n.toLowerCase());
    const pattern = new RegExp(`\\b(${[...new Set(names)].join('|')})\\b`, 'i');
    const offenders: string[] = [];
    for (const file of sources(SRC)) {
      const rel = path.relative(SRC, file).split(path.sep).join('/');
      if (EXEMPT.some((e) => rel.startsWith(e))) continue;
      code(readFileSync(file, 'utf8'))
        .split('\n')
        .forEach((line, i) => {
          if (pattern.test(line)) offenders.push(`src/${rel}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });
});
