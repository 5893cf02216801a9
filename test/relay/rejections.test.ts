/**
 * Issue 12, point 5: rejected upgrades cannot amplify into logs or echo their input. Before auth,
 * anyone can make them: 2000 with a 15 KB bad query parameter wrote 30 MB of info lines.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { StatusStream } from '../../src/core/status.ts';
import { REJECTED_INFO_PER_WINDOW, REJECTED_WINDOW_MS, createLogger, logStatus } from '../../src/ops/logger.ts';
import { cleanup, startRelay } from './helpers.ts';

afterEach(cleanup);

/** An upgrade request answered with an HTTP error: its status and body. */
function rejectedUpgrade(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('upgrade', () => {
      reject(new Error('upgrade unexpectedly succeeded'));
    });
    req.on('error', reject);
    req.end();
  });
}

function captureLog(level: 'info' | 'debug'): { lines: Record<string, unknown>[]; bytes: () => number; log: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  let bytes = 0;
  const log = createLogger(level, {
    write(s: string) {
      bytes += s.length;
      lines.push(JSON.parse(s) as Record<string, unknown>);
    },
  });
  return { lines, bytes: () => bytes, log };
}

describe('rejected relay upgrades', () => {
  it('log at most 10 info lines per 10 s, with reasons clipped, and say how many were held back', async () => {
    const h = await startRelay();
    const { lines, bytes, log } = captureLog('info');
    let now = 0;
    logStatus(h.status, log, { now: () => now });
    const bad = `${h.url.replace(/^ws:/, 'http:')}/ws?timeUnit=${'X'.repeat(15_000)}`;
    const results = await Promise.all(Array.from({ length: 50 }, () => rejectedUpgrade(bad)));
    for (const r of results) {
      expect(r.status).toBe(400);
      // The body names the problem with a short prefix of the input, never all of it.
      expect(r.body.length).toBeLessThanOrEqual(100);
      expect(r.body).toMatch(/^invalid timeUnit `X+…/); // quoteForMessage, then clipped to 100
    }
    expect(h.relay.stats().rejected).toBe(50); // every one is counted (connector_relay_rejected_total)
    const info = lines.filter((l) => l['event'] === 'relay.client.rejected');
    expect(info).toHaveLength(REJECTED_INFO_PER_WINDOW);
    for (const l of info) expect(String(l['reason']).length).toBeLessThanOrEqual(100);
    expect(bytes()).toBeLessThan(10 * 1024); // 50 x 15 KB of input, a few KB of log
    // The next window's first line carries the count held back in the last one.
    now += REJECTED_WINDOW_MS;
    await rejectedUpgrade(bad);
    expect(lines.at(-1)).toMatchObject({ event: 'relay.client.rejected', level: 'info', suppressed: 40 });
  });

  it('log the held-back ones at debug', () => {
    const status = new StatusStream();
    const { lines, log } = captureLog('debug');
    logStatus(status, log, { now: () => 0 });
    for (let i = 0; i < 12; i++) status.emit({ type: 'relay.client.rejected', remote: '10.0.0.1:1234', status: 401, reason: 'unauthorized' });
    expect(lines.map((l) => l['level'])).toEqual([...Array<string>(10).fill('info'), 'debug', 'debug']);
  });

  it('answer 404 for unknown paths without echoing them', async () => {
    const h = await startRelay();
    const r = await rejectedUpgrade(`${h.url.replace(/^ws:/, 'http:')}/${'p'.repeat(10_000)}`);
    expect(r).toEqual({ status: 404, body: 'not found' });
  });
});
