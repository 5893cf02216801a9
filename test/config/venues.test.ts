/**
 * Venues in the configuration (contract §2a, issue 13 point 5): CONNECTOR_VENUES, each venue's own
 * variables from its adapter's env fragment, and exit 78 naming the variable for a listed venue
 * without symbols, an interval the venue does not have, or a symbol in the wrong form.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { load, issuesOf, ROOT } from './helpers.ts';

describe('venues in the configuration', () => {
  it('ingests Binance spot alone by default, from the pre-venue variables', () => {
    const { config } = load({ CONNECTOR_SYMBOLS: 'BTCUSDT,solusdt', CONNECTOR_INTERVALS: '1m,1h', CONNECTOR_BINANCE_WS_URL: 'ws://127.0.0.1:9/' });
    expect(config.venues).toEqual([
      { id: 'binance', symbols: ['btcusdt', 'solusdt'], intervals: ['1m', '1h'], wsUrl: 'ws://127.0.0.1:9', restUrl: 'https://api.binance.com' },
    ]);
  });

  it('runs two venues side by side, each with its own variables and its own defaults', () => {
    const { config, warnings } = load({
      CONNECTOR_VENUES: 'binance, binance-usdm',
      CONNECTOR_BINANCE_USDM_SYMBOLS: 'BTCUSDT,ethusdt,btcusdt_260626',
      CONNECTOR_BINANCE_USDM_INTERVALS: '1m,5m,1M',
    });
    expect(config.venues.map((v) => v.id)).toEqual(['binance', 'binance-usdm']);
    expect(config.venues[0]).toMatchObject({ symbols: ['btcusdt', 'ethusdt'], intervals: ['1m'] });
    expect(config.venues[1]).toEqual({
      id: 'binance-usdm',
      symbols: ['btcusdt', 'ethusdt', 'btcusdt_260626'],
      intervals: ['1m', '5m', '1M'],
      wsUrl: 'wss://fstream.binance.com/market',
      restUrl: 'https://fapi.binance.com',
    });
    expect(warnings.filter((w) => w.includes('CONNECTOR_BINANCE_USDM'))).toEqual([]);
  });

  it('refuses a listed venue without symbols, naming its variable', () => {
    const issues = issuesOf({ CONNECTOR_VENUES: 'binance,binance-usdm' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^CONNECTOR_BINANCE_USDM_SYMBOLS=unset \(default\): required: binance-usdm is listed in CONNECTOR_VENUES/);
  });

  it('refuses an interval the venue does not have, naming its variable and the intervals it has', () => {
    const issues = issuesOf({ CONNECTOR_VENUES: 'binance-usdm', CONNECTOR_BINANCE_USDM_SYMBOLS: 'btcusdt', CONNECTOR_BINANCE_USDM_INTERVALS: '1m,1s' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^CONNECTOR_BINANCE_USDM_INTERVALS="1m,1s" \(environment\): expected Binance USD-M kline intervals: 1m, 3m,/);
    // A venue's own spellings are not canonical ones either.
    expect(issuesOf({ CONNECTOR_INTERVALS: '1H' })[0]).toMatch(/^CONNECTOR_INTERVALS="1H".*expected Binance spot kline intervals: 1s, 1m/);
  });

  it('refuses a symbol in the wrong form for its venue, naming the variable', () => {
    expect(issuesOf({ CONNECTOR_SYMBOLS: 'BTC-USDT' })[0]).toMatch(/^CONNECTOR_SYMBOLS="BTC-USDT" \(environment\): symbols are 2-30 letters or digits/);
    const usdm = issuesOf({ CONNECTOR_VENUES: 'binance-usdm', CONNECTOR_BINANCE_USDM_SYMBOLS: 'btcusdt_2606' });
    expect(usdm).toHaveLength(1);
    expect(usdm[0]).toMatch(/^CONNECTOR_BINANCE_USDM_SYMBOLS="btcusdt_2606" \(environment\): symbols are .*btcusdt_260626/);
  });

  it('refuses a venue it does not know, listing the ones it does', () => {
    const issues = issuesOf({ CONNECTOR_VENUES: 'binance,kraken' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^CONNECTOR_VENUES="binance,kraken" \(environment\): expected venues from: binance, binance-usdm/);
  });

  it('checks every listed venue against TLS and the pool capacity, naming that venue’s variables', () => {
    const issues = issuesOf({
      CONNECTOR_REQUIRE_TLS: 'true',
      CONNECTOR_VENUES: 'binance,binance-usdm',
      CONNECTOR_BINANCE_USDM_SYMBOLS: Array.from({ length: 30 }, (_, i) => `s${i}usdt`).join(','),
      CONNECTOR_BINANCE_USDM_INTERVALS: '1m,5m',
      CONNECTOR_BINANCE_USDM_WS_URL: 'ws://127.0.0.1:1/market',
      CONNECTOR_MAX_CONNECTIONS: '1',
      CONNECTOR_MAX_STREAMS_PER_CONNECTION: '50',
    });
    expect(issues.find((l) => l.startsWith('CONNECTOR_BINANCE_USDM_WS_URL='))).toMatch(/must be wss:\/\//);
    expect(issues.find((l) => l.startsWith('CONNECTOR_BINANCE_USDM_SYMBOLS='))).toMatch(/60 streams exceed the pool capacity/);
    expect(issues.find((l) => l.startsWith('CONNECTOR_BINANCE_WS_URL='))).toBeUndefined();
  });

  it('says that a venue’s variables do nothing while the venue is not listed, and refuses them in production', () => {
    const { config, warnings } = load({ CONNECTOR_BINANCE_USDM_SYMBOLS: 'btcusdt' });
    expect(config.venues.map((v) => v.id)).toEqual(['binance']);
    expect(warnings).toContain('CONNECTOR_BINANCE_USDM_SYMBOLS is ignored: binance-usdm is not in CONNECTOR_VENUES');
    const issues = issuesOf({ CONNECTOR_ENV: 'production', CONNECTOR_RELAY_AUTH: 'none', CONNECTOR_BINANCE_USDM_SYMBOLS: 'btcusdt' });
    expect(issues).toEqual([
      'CONNECTOR_BINANCE_USDM_SYMBOLS (environment): binance-usdm is not in CONNECTOR_VENUES, so this does nothing; with CONNECTOR_ENV=production this is an error',
    ]);
  });

  it('exits 78 naming the variable when a listed venue has no symbols', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'src/main.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', CONNECTOR_VENUES: 'binance-usdm' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^config error: CONNECTOR_BINANCE_USDM_SYMBOLS=unset \(default\): required/) as unknown]);
  });
});
