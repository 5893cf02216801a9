/** Seed-era values and the presets' original figures (issue 11 point 5, contract §2). */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { load, issuesOf, ROOT } from './helpers.ts';

describe('seed-era values', () => {
  it('accepts the v0.2 .env.example as it is, without an unknown-variable warning', () => {
    const seed = parseDotenv(readFileSync(path.join(ROOT, 'test/fixtures/v0.2.env')));
    const { config, warnings } = load(seed);
    // The seed ran its relay open (it had no token): the only warning left says so, on purpose.
    expect(warnings.filter((w) => !w.startsWith('the relay accepts every client'))).toEqual([]);
    expect(warnings.some((w) => w.includes('unknown variable'))).toBe(false);
    expect(config.breaker.recoveryTimeoutMs).toBe(30_000);
    expect(config.pipeline.dedupWindowMs).toBe(120_000);
    expect(config.pipeline.openQueueMax).toBe(0);
    expect(config.http.enabled).toBe(true);
  });

  it('reads decimal seconds, fractions included, at millisecond resolution', () => {
    const { config } = load({
      CONNECTOR_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: '30.0',
      CONNECTOR_CIRCUIT_BREAKER_RECOVERY_MAX: '300.000',
      CONNECTOR_DEDUPLICATION_WINDOW_SECONDS: '1.5',
    });
    expect(config.breaker.recoveryTimeoutMs).toBe(30_000);
    expect(config.breaker.recoveryMaxMs).toBe(300_000);
    expect(config.pipeline.dedupWindowMs).toBe(1500);
  });

  it('accepts an integral decimal wherever an integer is required', () => {
    const { config } = load({ CONNECTOR_PING_TIMEOUT_MS: '60000.0', CONNECTOR_MAX_MISSED_PINGS: '3.0', CONNECTOR_RELAY_PORT: '8765.00' });
    expect(config.heartbeat.pingTimeoutMs).toBe(60_000);
    expect(config.heartbeat.maxMissedPings).toBe(3);
    expect(config.relay.port).toBe(8765);
  });

  it('refuses a fractional value where an integer is required, naming the variable and its value', () => {
    const issues = issuesOf({ CONNECTOR_PING_TIMEOUT_MS: '60000.5', CONNECTOR_MAX_MISSED_PINGS: '2.5' });
    expect(issues).toHaveLength(2);
    expect(issues.find((l) => l.startsWith('CONNECTOR_PING_TIMEOUT_MS="60000.5"'))).toMatch(/expected an integer$/);
    expect(issues.find((l) => l.startsWith('CONNECTOR_MAX_MISSED_PINGS="2.5"'))).toMatch(/expected an integer$/);
    expect(issuesOf({ CONNECTOR_DEDUPLICATION_WINDOW_SECONDS: '1e3' })[0]).toMatch(/^CONNECTOR_DEDUPLICATION_WINDOW_SECONDS="1e3".*expected a number of seconds/);
  });

  it('takes CONNECTOR_OPEN_QUEUE_MAXSIZE=0 as "one slot per stream, no further bound" and still refuses negatives', () => {
    expect(load({ CONNECTOR_OPEN_QUEUE_MAXSIZE: '0' }).config.pipeline.openQueueMax).toBe(0);
    expect(issuesOf({ CONNECTOR_OPEN_QUEUE_MAXSIZE: '-1' })[0]).toMatch(/^CONNECTOR_OPEN_QUEUE_MAXSIZE="-1".*>= 0/);
  });

  it('reads CONNECTOR_WSS_HEALTH_CHECK_ENABLED as a boolean (default true)', () => {
    expect(load({}).config.http.enabled).toBe(true);
    expect(load({ CONNECTOR_WSS_HEALTH_CHECK_ENABLED: 'false' }).config.http.enabled).toBe(false);
    expect(load({ CONNECTOR_WSS_HEALTH_CHECK_ENABLED: 'true', CONNECTOR_RELAY_AUTH: 'none' }).warnings).toEqual([]);
    expect(issuesOf({ CONNECTOR_WSS_HEALTH_CHECK_ENABLED: 'maybe' })[0]).toMatch(/^CONNECTOR_WSS_HEALTH_CHECK_ENABLED="maybe"/);
  });
});

describe('presets carry the original values', () => {
  it('staging: 5 connections, 15 s health checks, 180 s idle, 10 retries, 30 s max delay, debug logs, alert threshold 0.3', () => {
    // The staging preset requires TLS; its defaults are wss:// and https:// already.
    const { config } = load({ CONNECTOR_ENV: 'staging' });
    expect(config.pool).toMatchObject({ maxConnections: 5, healthCheckIntervalMs: 15_000, idleTimeoutMs: 180_000 });
    expect(config.reconnect).toMatchObject({ maxRetries: 10, maxMs: 30_000 });
    expect(config.logLevel).toBe('debug');
    expect(config.health.criticalRatio).toBe(0.3);
  });

  it('development: 3 connections, 10 s health checks, 60 s idle, 5 retries, 10 s max delay, debug logs, alert threshold 0.1', () => {
    const { config } = load({ CONNECTOR_ENV: 'development' });
    expect(config.pool).toMatchObject({ maxConnections: 3, healthCheckIntervalMs: 10_000, idleTimeoutMs: 60_000 });
    expect(config.reconnect).toMatchObject({ maxRetries: 5, maxMs: 10_000 });
    expect(config.logLevel).toBe('debug');
    expect(config.health.criticalRatio).toBe(0.1);
    // The ratio rule still holds: critical <= degraded <= ready.
    expect(config.health.criticalRatio).toBeLessThanOrEqual(config.health.degradedRatio);
    expect(config.health.degradedRatio).toBeLessThanOrEqual(config.health.readyMinLiveRatio);
  });
});
