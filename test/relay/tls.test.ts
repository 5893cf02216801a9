/**
 * Issue 12, point 4: optional TLS on the relay port (wss://), so tokens need not cross in clear,
 * reloaded when the certificate files change. Certificates are self-signed, made by `openssl` for
 * each run (node:crypto cannot issue X.509 certificates); without openssl these tests are skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync, readFileSync } from 'node:fs';
import { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ConfigError } from '../../src/core/errors.ts';
import { loadConfig } from '../../src/config/load.ts';
import { BTC, TestClient, cleanup, rawText, startRelay, waitFor, wsCandle, type Harness } from './helpers.ts';

afterEach(cleanup);

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const HAS_OPENSSL = spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;

interface Pair {
  readonly cert: string;
  readonly key: string;
  readonly fingerprint: string;
}

/** A self-signed P-256 certificate for 127.0.0.1, as PEM text. */
function makePair(dir: string, name: string): Pair {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile],
    { stdio: 'ignore' },
  );
  const cert = readFileSync(certFile, 'utf8');
  return { cert, key: readFileSync(keyFile, 'utf8'), fingerprint: new X509Certificate(cert).fingerprint256 };
}

/** Replace a file atomically, as a Secret volume or `mv` does (write aside, rename over). */
function replace(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** The certificate a new wss:// connection is served. */
function servedFingerprint(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca });
    ws.on('upgrade', (res) => {
      const socket = res.socket;
      resolve(socket instanceof TLSSocket ? (socket.getPeerX509Certificate()?.fingerprint256 ?? '') : 'not TLS');
      ws.terminate();
    });
    ws.on('error', reject);
  });
}

function wssUrl(h: Harness): string {
  return h.url.replace(/^ws:/, 'wss:');
}

describe.skipIf(!HAS_OPENSSL)('relay over TLS (needs openssl to make a test certificate)', () => {
  it('serves wss:// with the configured certificate, with token auth, and refuses plain ws://', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-tls-'));
    const pair = makePair(dir, 'one');
    const h = await startRelay({ token: 's3cret', tls: { certFile: path.join(dir, 'one.crt'), keyFile: path.join(dir, 'one.key') } });
    const c = await TestClient.open(`${wssUrl(h)}/ws/btcusdt@kline_1m`, { ca: pair.cert, headers: { authorization: 'Bearer s3cret' } });
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await c.next()).toBe(rawText(b));
    expect(await servedFingerprint(`${wssUrl(h)}/ws?token=s3cret`, pair.cert)).toBe(pair.fingerprint);
    // A client speaking plain WebSocket to the TLS port gets no upgrade.
    await expect(TestClient.open(`${h.url}/ws?token=s3cret`)).rejects.toThrow();
    expect(h.relay.stats().clients).toBe(1);
  });

  it('reloads a renewed certificate for new connections without dropping connected clients, and keeps the old one when the new pair is unusable', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-tls-'));
    const one = makePair(dir, 'one');
    const two = makePair(dir, 'two');
    const certFile = path.join(dir, 'relay.crt');
    const keyFile = path.join(dir, 'relay.key');
    writeFileSync(certFile, one.cert);
    writeFileSync(keyFile, one.key);
    const h = await startRelay({ tls: { certFile, keyFile } });
    const ca = one.cert + two.cert;
    const connected = await TestClient.open(`${wssUrl(h)}/ws/btcusdt@kline_1m`, { ca });
    expect(await servedFingerprint(`${wssUrl(h)}/ws`, ca)).toBe(one.fingerprint);

    // Only the certificate changes: it does not match the key in force, so the old pair stays.
    replace(certFile, two.cert);
    await waitFor(() => h.events.some((e) => e.type === 'relay.tls' && e.outcome === 'failed'), 5000, 'the mismatched pair to be refused');
    expect(await servedFingerprint(`${wssUrl(h)}/ws`, ca)).toBe(one.fingerprint);

    // The key lands too: the new pair is in force for new connections.
    replace(keyFile, two.key);
    await waitFor(() => h.events.some((e) => e.type === 'relay.tls' && e.outcome === 'reloaded'), 5000, 'the renewed pair to be loaded');
    expect(await servedFingerprint(`${wssUrl(h)}/ws`, ca)).toBe(two.fingerprint);

    // The client connected before the renewal never noticed.
    const b = wsCandle(BTC);
    h.relay.deliver([b]);
    expect(await connected.next()).toBe(rawText(b));
  });
});

describe('relay TLS configuration', () => {
  it('is a configuration error to set the certificate without the key (or the reverse), naming both', () => {
    for (const env of [{ CONNECTOR_RELAY_TLS_CERT_FILE: '/etc/relay/tls.crt' }, { CONNECTOR_RELAY_TLS_KEY_FILE: '/etc/relay/tls.key' }]) {
      let error: unknown;
      try {
        loadConfig({ env, dotenvPath: null });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const issues = (error as ConfigError).issues;
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatch(/CONNECTOR_RELAY_TLS_CERT_FILE and CONNECTOR_RELAY_TLS_KEY_FILE go together/);
    }
    const { config } = loadConfig({ env: { CONNECTOR_RELAY_TLS_CERT_FILE: '/a.crt', CONNECTOR_RELAY_TLS_KEY_FILE: '/a.key' }, dotenvPath: null });
    expect(config.relay.tls).toEqual({ certFile: '/a.crt', keyFile: '/a.key' });
    expect(loadConfig({ env: {}, dotenvPath: null }).config.relay.tls).toBeUndefined();
  });

  it('the daemon exits 78 with one line naming both variables', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'src/main.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', CONNECTOR_RELAY_TLS_KEY_FILE: '/etc/relay/tls.key' },
      encoding: 'utf8',
      timeout: 20_000,
      killSignal: 'SIGKILL', // a daemon that started instead would drain gracefully on SIGTERM, for a while
    });
    expect(r.status).toBe(78);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^config error: CONNECTOR_RELAY_TLS_CERT_FILE=unset .*CONNECTOR_RELAY_TLS_CERT_FILE and CONNECTOR_RELAY_TLS_KEY_FILE go together/),
    ]);
  });
});
