/**
 * Relay auth fails closed (contract §2, issue 12 point 4): production refuses to start with an open
 * relay unless CONNECTOR_RELAY_AUTH=none says so, and an unknown CONNECTOR_* name there is an error.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { load, issuesOf, ROOT } from './helpers.ts';

const SECRET = 's3cret-relay-token-value';

/**
 * Start the real entry point. The env keeps every listener on loopback port 0 and the upstream on an
 * unreachable address, so that on code that (wrongly) starts, the run only times out and fails.
 */
function startDaemon(env: Record<string, string>): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      CONNECTOR_RELAY_HOST: '127.0.0.1',
      CONNECTOR_RELAY_PORT: '0',
      CONNECTOR_HEALTH_CHECK_HOST: '127.0.0.1',
      CONNECTOR_WSS_HEALTH_CHECK_PORT: '0',
      CONNECTOR_BINANCE_WS_URL: 'wss://127.0.0.1:1',
      CONNECTOR_BINANCE_REST_URL: 'https://127.0.0.1:1',
      CONNECTOR_LOG_LEVEL: 'silent',
      ...env,
    },
    encoding: 'utf8',
    timeout: 15_000,
  });
  return { status: r.status, stderr: r.stderr };
}

describe('production refuses to start with an open relay unless told so', () => {
  it('exits 78 without CONNECTOR_RELAY_TOKEN, with one line naming the token and CONNECTOR_RELAY_AUTH=none', () => {
    const r = startDaemon({ CONNECTOR_ENV: 'production' });
    expect(r.status).toBe(78);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^config error: CONNECTOR_RELAY_TOKEN=unset .*CONNECTOR_ENV=production.*CONNECTOR_RELAY_AUTH=none/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 78 on an unknown CONNECTOR_* variable, with the did-you-mean hint and without echoing its value', () => {
    const r = startDaemon({ CONNECTOR_ENV: 'production', CONNECTOR_RELAY_AUTH: 'none', CONNECTOR_RELAY_TOKN: SECRET });
    expect(r.status).toBe(78);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^config error: CONNECTOR_RELAY_TOKN .*unknown variable.*did you mean CONNECTOR_RELAY_TOKEN\?/);
    expect(r.stderr).not.toContain(SECRET);
  });

  it('reports an unknown variable and a missing token together, one line each', () => {
    // The typo is the reason the token is missing: the operator sees both at once.
    const issues = issuesOf({ CONNECTOR_ENV: 'production', CONNECTOR_RELAY_TOKN: SECRET });
    expect(issues).toHaveLength(2);
    expect(issues.some((l) => /^CONNECTOR_RELAY_TOKN .*did you mean CONNECTOR_RELAY_TOKEN\?/.test(l))).toBe(true);
    expect(issues.some((l) => /^CONNECTOR_RELAY_TOKEN=unset/.test(l))).toBe(true);
    expect(issues.join('\n')).not.toContain(SECRET);
  });

  it('starts in production with a token or with CONNECTOR_RELAY_AUTH=none written out', () => {
    const withToken = load({ CONNECTOR_ENV: 'production', CONNECTOR_RELAY_TOKEN: SECRET });
    expect(withToken.config.relay.token).toBe(SECRET);
    expect(withToken.warnings).toEqual([]);
    const explicitToken = load({ CONNECTOR_ENV: 'production', CONNECTOR_RELAY_AUTH: 'token', CONNECTOR_RELAY_TOKEN: SECRET });
    expect(explicitToken.config.relay.token).toBe(SECRET);
    const open = load({ CONNECTOR_ENV: 'production', CONNECTOR_RELAY_AUTH: 'none' });
    expect(open.config.relay.token).toBeUndefined();
    expect(open.warnings).toEqual([]);
  });

  it('is not opened by any preset: no config/<env>.json sets CONNECTOR_RELAY_AUTH or a token', () => {
    // Opening the relay is a per-deployment decision (environment / k8s overlay), not a shipped default.
    for (const env of ['development', 'staging', 'production']) {
      const preset = JSON.parse(readFileSync(path.join(ROOT, 'config', `${env}.json`), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(preset), env).not.toContain('CONNECTOR_RELAY_AUTH');
      expect(Object.keys(preset), env).not.toContain('CONNECTOR_RELAY_TOKEN');
    }
  });
});

describe('CONNECTOR_RELAY_AUTH', () => {
  it('defaults to token when a token is set and to none when it is not (outside production)', () => {
    // The relay authenticates exactly when config.relay.token is set (src/relay/server.ts).
    expect(load({ CONNECTOR_RELAY_TOKEN: SECRET }).config.relay.token).toBe(SECRET);
    expect(load({}).config.relay.token).toBeUndefined();
    expect(load({ CONNECTOR_ENV: 'staging' }).config.relay.token).toBeUndefined();
  });

  it('warns outside production when the relay is open only because no token is set', () => {
    expect(load({}).warnings.join('\n')).toMatch(/relay accepts every client.*CONNECTOR_RELAY_TOKEN.*CONNECTOR_RELAY_AUTH=none/);
    expect(load({ CONNECTOR_RELAY_AUTH: 'none' }).warnings).toEqual([]);
    expect(load({ CONNECTOR_RELAY_TOKEN: SECRET }).warnings).toEqual([]);
  });

  it('rejects none together with a token as a contradiction, naming both and never the token', () => {
    for (const env of ['development', 'production']) {
      const issues = issuesOf({ CONNECTOR_ENV: env, CONNECTOR_RELAY_AUTH: 'none', CONNECTOR_RELAY_TOKEN: SECRET });
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatch(/^CONNECTOR_RELAY_AUTH="none" \(environment\): .*CONNECTOR_RELAY_TOKEN/);
      expect(issues[0]).not.toContain(SECRET);
    }
  });

  it('rejects token without a token', () => {
    const issues = issuesOf({ CONNECTOR_RELAY_AUTH: 'token' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^CONNECTOR_RELAY_TOKEN=unset .*required when CONNECTOR_RELAY_AUTH=token/);
  });

  it('rejects any other value, listing the allowed ones', () => {
    expect(issuesOf({ CONNECTOR_RELAY_AUTH: 'off' })[0]).toMatch(/^CONNECTOR_RELAY_AUTH="off" \(environment\): .*token.*none/);
  });
});

describe('unknown CONNECTOR_* variables outside production', () => {
  it('stay warnings with a did-you-mean hint in development and staging', () => {
    for (const env of ['development', 'staging']) {
      const { warnings } = load({ CONNECTOR_ENV: env, CONNECTOR_RELAY_AUTH: 'none', CONNECTOR_RELAY_TOKN: SECRET });
      expect(warnings).toEqual(['unknown variable CONNECTOR_RELAY_TOKN is ignored (did you mean CONNECTOR_RELAY_TOKEN?)']);
    }
  });
});
