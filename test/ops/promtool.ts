/** Locate promtool once; tests that need it skip with a clear message when it is absent. */
import { execFileSync, spawnSync } from 'node:child_process';

export function findPromtool(): string | undefined {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return 'promtool';
  } catch {
    return undefined;
  }
}

export const PROMTOOL_MISSING = 'promtool not installed (apt-get install -y prometheus): skipping the promtool check';

export function promtool(args: readonly string[], input?: string): { code: number; out: string } {
  const r = spawnSync('promtool', args, { input, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}
