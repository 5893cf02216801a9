/**
 * Issue 12, point 2: heap pressure is a status event (the relay sheds on it), and an out-of-memory
 * that still happens is preceded by a structured warning line.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StatusStream, type StatusEvent } from '../../src/core/status.ts';
import { HeapMonitor, maxOldSpaceFromFlags, readHeap, type HeapReading } from '../../src/ops/heap.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

afterEach(() => {
  vi.useRealTimers();
});

describe('heap-pressure monitor', () => {
  it('emits high once past 85 % of the heap limit and normal once back under 75 %, sampling on its interval', () => {
    vi.useFakeTimers();
    const status = new StatusStream();
    const events: StatusEvent[] = [];
    status.subscribe((e) => events.push(e));
    let used = 50;
    const read = (): HeapReading => ({ usedBytes: used, limitBytes: 100 });
    const monitor = new HeapMonitor({ status, intervalMs: 1000, read });
    monitor.start();
    used = 86;
    vi.advanceTimersByTime(999);
    expect(events).toEqual([]); // not sampled yet
    vi.advanceTimersByTime(1);
    expect(events).toEqual([{ type: 'heap.pressure', state: 'high', usedBytes: 86, limitBytes: 100 }]);
    used = 80; // between the thresholds: still high, nothing new
    vi.advanceTimersByTime(3000);
    expect(events).toHaveLength(1);
    used = 74;
    vi.advanceTimersByTime(1000);
    expect(events[1]).toEqual({ type: 'heap.pressure', state: 'normal', usedBytes: 74, limitBytes: 100 });
    monitor.close();
    used = 99;
    vi.advanceTimersByTime(5000);
    expect(events).toHaveLength(2);
  });

  it('measures against --max-old-space-size, the limit V8 dies at, not heap_size_limit with its young reserve', () => {
    expect(maxOldSpaceFromFlags(['--max-semi-space-size=2', '--max-old-space-size=384'])).toBe(384 * 1024 * 1024);
    expect(maxOldSpaceFromFlags(['--max_old_space_size', '192', '--max-old-space-size=288'])).toBe(288 * 1024 * 1024);
    expect(maxOldSpaceFromFlags(['--inspect'])).toBeUndefined();
    const r = readHeap(1000 * 1024 * 1024);
    expect(r.limitBytes).toBe(1000 * 1024 * 1024);
    expect(r.usedBytes).toBeGreaterThan(0);
  });

  it('leaves a structured warning line before V8 runs out of heap', () => {
    // A process with a 48 MB old space that leaks steadily until V8 aborts, logging as the daemon does.
    const script = `
      import { StatusStream } from ${JSON.stringify(`${ROOT}src/core/status.ts`)};
      import { createLogger, logStatus } from ${JSON.stringify(`${ROOT}src/ops/logger.ts`)};
      import { HeapMonitor } from ${JSON.stringify(`${ROOT}src/ops/heap.ts`)};
      const status = new StatusStream();
      logStatus(status, createLogger('info'));
      new HeapMonitor({ status, intervalMs: 10 }).start();
      const hoard = [];
      const grow = () => {
        for (let i = 0; i < 20; i++) hoard.push(new Array(1000).fill(i));
        setTimeout(grow, 1);
      };
      grow();
    `;
    const r = spawnSync(process.execPath, ['--max-old-space-size=48', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? '' },
    });
    expect(r.stderr).toMatch(/heap out of memory/i); // it really died of it
    expect(r.status === 0).toBe(false);
    const lines = r.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ level: 'warn', event: 'heap.pressure', state: 'high' }));
  });
});
