import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, closest } from '../../src/config/load.ts';
import { load, issuesOf, ROOT } from './helpers.ts';

describe('configuration', () => {
  it('applies the contract defaults when nothing is set', () => {
    const { config } = load({});
    expect(config.env).toBe('development');
    expect(config.venues[0]!.symbols).toEqual(['btcusdt', 'ethusdt']);
    expect(config.venues[0]!.intervals).toEqual(['1m']);
    expect(config.venues[0]!.wsUrl).toBe('wss://stream.binance.com:9443');
    expect(config.relay.port).toBe(8765);
    expect(config.http.port).toBe(8766);
    expect(config.pipeline.closedQueueMax).toBe(1000);
    expect(config.breaker.recoveryTimeoutMs).toBe(30_000);
  });

  it('loads the production preset with the original production values', () => {
    const { config } = load({ CONNECTOR_ENV: 'production', CONNECTOR_RELAY_TOKEN: 't' });
    expect(config.pool).toMatchObject({
      maxConnections: 10,
      maxStreamsPerConnection: 200,
      initialConnections: 3,
      connectTimeoutMs: 30_000,
      healthCheckIntervalMs: 30_000,
      idleTimeoutMs: 300_000,
      maxAgeMs: 3_600_000,
      maxMessageBytes: 1_048_576,
    });
    expect(config.heartbeat).toMatchObject({ pingTimeoutMs: 60_000, pongTimeoutMs: 5000, maxMissedPings: 3, unhealthyThreshold: 0.5 });
    expect(config.reconnect).toMatchObject({ maxRetries: 15, baseMs: 1000, maxMs: 60_000, jitter: 0.25, resetAfterSuccesses: 3 });
    expect(config.health).toMatchObject({ readyMinLiveRatio: 0.7, degradedRatio: 0.5, criticalRatio: 0.3, maxMemoryBytes: 100 * 1024 * 1024 });
    expect(config.requireTls).toBe(true);
  });

  it('lets CONNECTOR_* variables override the preset', () => {
    const { config } = load({ CONNECTOR_ENV: 'production', CONNECTOR_RELAY_TOKEN: 't', CONNECTOR_MAX_CONNECTIONS: '4', CONNECTOR_SYMBOLS: ' BTCUSDT, solusdt ,btcusdt' });
    expect(config.pool.maxConnections).toBe(4);
    expect(config.venues[0]!.symbols).toEqual(['btcusdt', 'solusdt']);
  });

  it('returns a deeply frozen object', () => {
    const { config } = load({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.pool)).toBe(true);
    expect(Object.isFrozen(config.venues[0]!.symbols)).toBe(true);
  });

  it('names each bad variable once, with its value and what is allowed', () => {
    const issues = issuesOf({ CONNECTOR_RELAY_PORT: 'abc', CONNECTOR_INTERVALS: '1m,7m', CONNECTOR_RECONNECT_JITTER: '2' });
    expect(issues).toHaveLength(3);
    expect(issues.find((l) => l.startsWith('CONNECTOR_RELAY_PORT="abc"'))).toMatch(/integer/);
    expect(issues.find((l) => l.startsWith('CONNECTOR_INTERVALS='))).toMatch(/1s, 1m/);
    expect(issues.find((l) => l.startsWith('CONNECTOR_RECONNECT_JITTER="2"'))).toMatch(/<= 1/);
  });

  it('rejects an empty number instead of reading it as 0', () => {
    expect(issuesOf({ CONNECTOR_CLOSED_QUEUE_MAXSIZE: '' })[0]).toMatch(/^CONNECTOR_CLOSED_QUEUE_MAXSIZE=""/);
  });

  it('never echoes the relay token', () => {
    // An empty token is invalid; the line must still not print the value.
    const issues = issuesOf({ CONNECTOR_RELAY_TOKEN: '' });
    expect(issues[0]).toMatch(/^CONNECTOR_RELAY_TOKEN="<redacted>"/);
  });

  it('requires TLS URLs in production', () => {
    const issues = issuesOf({ CONNECTOR_ENV: 'production', CONNECTOR_BINANCE_WS_URL: 'ws://127.0.0.1:1' });
    expect(issues.join('\n')).toMatch(/CONNECTOR_BINANCE_WS_URL.*wss:\/\//);
  });

  it('rejects more streams than the pool can carry', () => {
    const symbols = Array.from({ length: 30 }, (_, i) => `sym${i}usdt`).join(',');
    const issues = issuesOf({ CONNECTOR_SYMBOLS: symbols, CONNECTOR_INTERVALS: '1m,5m', CONNECTOR_MAX_CONNECTIONS: '1', CONNECTOR_MAX_STREAMS_PER_CONNECTION: '50' });
    expect(issues.join('\n')).toMatch(/60 streams exceed the pool capacity/);
  });

  it('warns about unknown CONNECTOR_* names with a did-you-mean hint and still starts', () => {
    const { warnings, config } = load({ CONNECTOR_SYMBOL: 'btcusdt', CONNECTOR_RELAY_PROT: '1' });
    expect(config.venues[0]!.symbols).toEqual(['btcusdt', 'ethusdt']);
    expect(warnings).toContain('unknown variable CONNECTOR_SYMBOL is ignored (did you mean CONNECTOR_SYMBOLS?)');
    expect(warnings.join('\n')).toMatch(/CONNECTOR_RELAY_PROT .*did you mean CONNECTOR_RELAY_PORT/);
    expect(closest('CONNECTOR_TOTALLY_DIFFERENT_THING_X')).toBeUndefined();
  });

  it('reports a bad preset file as a config error', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    writeFileSync(path.join(dir, 'staging.json'), '{"CONNECTOR_MAX_CONECTIONS": 3}');
    expect(() => load({ CONNECTOR_ENV: 'staging' }, dir)).toThrow(/CONNECTOR_MAX_CONECTIONS .*did you mean CONNECTOR_MAX_CONNECTIONS/);
  });

  it('reads .env but lets the real environment win', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'env-'));
    const file = path.join(dir, '.env');
    writeFileSync(file, 'CONNECTOR_SYMBOLS=xrpusdt\nCONNECTOR_RELAY_PORT=9999\n');
    const { config } = loadConfig({ env: { CONNECTOR_RELAY_PORT: '7000' }, dotenvPath: file });
    expect(config.venues[0]!.symbols).toEqual(['xrpusdt']);
    expect(config.relay.port).toBe(7000);
  });
});

describe('daemon start-up with bad configuration', () => {
  it('exits 78 with one line per bad variable and no stack trace', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'src/main.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', CONNECTOR_RELAY_PORT: '70000', CONNECTOR_INTERVALS: '2m' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(78);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(r.stderr).toMatch(/config error: CONNECTOR_RELAY_PORT="70000" \(environment\): expected an integer <= 65535/);
    expect(r.stderr).toMatch(/config error: CONNECTOR_INTERVALS=/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('.env.example', () => {
  it('documents every variable the schema reads, with its default, and nothing else', async () => {
    const { readFileSync } = await import('node:fs');
    const { ENV_NAMES } = await import('../../src/config/schema.ts');
    const text = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
    const documented = new Map<string, string>();
    for (const m of text.matchAll(/^#?\s*(CONNECTOR_[A-Z0-9_]+)=(\S*)/gm)) documented.set(m[1]!, m[2]!);
    expect([...documented.keys()].sort()).toEqual([...ENV_NAMES].sort());
    // The documented values are valid and equal the defaults.
    const values = Object.fromEntries([...documented].filter(([, v]) => v !== ''));
    const noPresets = mkdtempSync(path.join(tmpdir(), 'nopresets-'));
    const { config: fromExample } = load(values, noPresets);
    const { config: defaults } = load({}, noPresets);
    expect(fromExample).toEqual(defaults);
  });
});
