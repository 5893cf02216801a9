/**
 * bin/kline-connector is how the daemon runs as shipped: `npm start` and the image's CMD both run it
 * (test/ops/dockerfile.test.ts checks that they do), so its runtime flags are the only ones. Run here
 * for real, against a stand-in dist/daemon/main.js (the bundle's entry, bin/build.ts) that reports what node it got.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
let dir: string | undefined;

afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

interface Report {
  pid: number;
  execArgv: string[];
  argv: string[];
  arenaMax: string | null;
  heapLimitMB: number;
}

/** A copy of the launcher next to a dist/daemon/main.js that prints what it was started with. */
function install(): string {
  dir = mkdtempSync(path.join(tmpdir(), 'launcher-'));
  mkdirSync(path.join(dir, 'bin'));
  mkdirSync(path.join(dir, 'dist/daemon'), { recursive: true });
  copyFileSync(path.join(ROOT, 'bin/kline-connector'), path.join(dir, 'bin/kline-connector'));
  writeFileSync(
    path.join(dir, 'dist/daemon/main.js'),
    `const v8 = require('node:v8');
process.stdout.write(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, argv: process.argv.slice(2),
  arenaMax: process.env.MALLOC_ARENA_MAX ?? null, heapLimitMB: v8.getHeapStatistics().heap_size_limit / 1048576 }));\n`,
  );
  return dir;
}

function run(cwd: string, env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; pid: number | undefined; report: Report }> {
  return new Promise((resolve, reject) => {
    // Only node's own directory and the system's on PATH, as a fresh shell or the image has.
    const child = spawn('sh', ['bin/kline-connector', ...args], { cwd, env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      resolve({ code, pid: child.pid, report: JSON.parse(out) as Report });
    });
  });
}

describe('bin/kline-connector (npm start and the image)', () => {
  it('execs node on dist/daemon/main.js with a 2 MB young generation and MALLOC_ARENA_MAX=2, passing its arguments on', async () => {
    const { code, pid, report } = await run(install(), {}, ['--x', 'y']);
    expect(code).toBe(0);
    // exec: node is the process that was started (in the image, PID 1), not a child of the shell.
    expect(report.pid).toBe(pid);
    expect(report.execArgv).toEqual(['--max-semi-space-size=2']);
    expect(report.arenaMax).toBe('2');
    expect(report.argv).toEqual(['--x', 'y']);
  });

  it('keeps NODE_OPTIONS (the overlays\u2019 heap limit) and a MALLOC_ARENA_MAX already set', async () => {
    const { code, report } = await run(install(), { NODE_OPTIONS: '--max-old-space-size=96', MALLOC_ARENA_MAX: '4' });
    expect(code).toBe(0);
    expect(report.arenaMax).toBe('4');
    expect(report.heapLimitMB).toBeLessThan(128);
    expect(report.execArgv).toEqual(['--max-semi-space-size=2']);
  });
});
