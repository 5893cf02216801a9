/**
 * The only benchmark check CI makes: `npm run bench -- --quick` runs every scenario end to end and
 * writes a well-formed results file. No assertion on any figure: benchmarks are never timed tests.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import * as z from 'zod';

const num = z.number().refine((v) => Number.isFinite(v), { message: 'expected a finite number' });
const Scenario = z.object({
  runs: z.number().int().min(1),
  msgsPerSec: num.min(0),
  cpuUsPerMsg: num.min(0),
  rssMB: num.positive(),
  heapMB: num.positive(),
  floodCpuPct: num.min(0),
  ratioMsgsPerSec: num.min(0),
  ratioCpuUsPerMsg: num.min(0),
  ratioRss: num.positive(),
  ratioHeap: num.positive(),
  p50Us: num.min(0).optional(),
  p99Us: num.min(0).optional(),
  p999Us: num.min(0).optional(),
  relaySentPerSec: num.min(0).optional(),
  clientsOpen: num.min(0).optional(),
});
const Latency = Scenario.required({ p50Us: true, p99Us: true, p999Us: true, relaySentPerSec: true });
const Results = z.object({
  kind: z.literal('bench'),
  version: z.literal(1),
  quick: z.literal(true),
  machine: z.object({ node: z.string(), cpus: z.number().int().min(1) }),
  scenarios: z.object({
    floor: Scenario,
    'full x1': Latency,
    'full x1 + scrape 1s': Latency,
    'full x10': Latency,
    'full x100': Latency,
    'binance npm': Scenario,
    'full x100 @10k/s': Latency,
    'full x10 @10k/s': Latency,
    'full x1 @10k/s': Latency,
  }),
  metricsOverhead: z.object({
    cpuPerMsgPct: num,
    msgsPerSecPct: num,
    // Measured by bench/metrics-overhead.ts in its own process, against a real daemon's /metrics.
    direct: z.object({ type: z.literal('metrics-overhead'), streams: z.number().int().positive(), scrapeBytes: num.positive(), perScrapeMs: num.positive(), scrapeEvery1sPct: num.positive(), nsPerObserve: num.positive(), observePctOfFullPath: num.positive() }),
  }),
  memory: z.object({
    form: z.string(),
    runs: z
      .array(
        z.object({
          streams: z.number().int(),
          historyPerStream: z.number().int().min(0),
          rssMB: num.positive(),
          peakRssMB: num.positive(),
          heapUsedMB: num.positive(),
          externalMB: num.positive(),
          historyCandles: z.number().int().min(0),
          // The relay client got what the daemon sent: a refused SUBSCRIBE would measure an idle daemon.
          clientMsgsPerSec: num.positive(),
          connections: z.number().int().min(1),
        }),
      )
      .length(3),
    perAddedStream: z.object({ rssKB: num, heapKB: num }),
    history: z.object({ candlesHeld: z.number().int().positive(), rssBytesPerCandle: num, payloadBytesPerCandle: num.positive() }),
  }),
  targets: z.array(z.object({ name: z.string(), value: num, goal: z.string(), pass: z.boolean() })).length(5),
});

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// ~35 s alone. Not part of the main `vitest run`: `npm test` runs it afterwards on its own
// (bench/vitest.config.ts), so it never starves tests with timing bounds. A smoke check, not a timing.
const TIMEOUT_MS = 150_000;
let dir: string | undefined;

afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function runQuick(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bench/run.ts', '--quick', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    // Bounded: killed by its pid (its own children exit when their IPC channel closes).
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('npm run bench -- --quick', () => {
  it('runs every scenario and writes a results file of the documented shape', async () => {
    dir = mkdtempSync(join(tmpdir(), 'bench-'));
    const out = join(dir, 'results.json');
    const { code, output } = await runQuick(out);
    expect(code, output).toBe(0);
    const parsed = Results.safeParse(JSON.parse(readFileSync(out, 'utf8')));
    expect(parsed.success ? [] : parsed.error.issues, output).toEqual([]);
  }, TIMEOUT_MS + 5_000);
});
