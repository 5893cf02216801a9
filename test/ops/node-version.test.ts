import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
};

/** Run the guard as if this Node were `version` (process.versions.node is redefined before it loads). */
function guardAs(version: string | undefined): { status: number | null; stderr: string } {
  const preload = version === undefined ? '' : `Object.defineProperty(process.versions, 'node', { value: ${JSON.stringify(version)} });`;
  const r = spawnSync(process.execPath, ['-e', `${preload} require('./src/check-node.cjs')`], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('Node version guard', () => {
  it('stops npm start and npm test on a Node older than engines with one line naming the Node needed', () => {
    const r = guardAs('20.20.2');
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(pkg.engines.node);
    expect(lines[0]).toContain('20.20.2');
  });

  it('lets the engines floor itself and newer Nodes through silently', () => {
    const floor = pkg.engines.node.replace(/^>=\s*/, '');
    for (const v of [floor, '24.0.0', '30.1.2', undefined]) {
      const r = guardAs(v);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    const [major, minor] = floor.split('.').map(Number) as [number, number];
    expect(guardAs(`${major}.${Math.max(0, minor - 1)}.99`).status).toBe(minor > 0 ? 1 : 0);
  });

  it('is wired before start and test, and npm ci refuses an old Node before installing (engine-strict)', () => {
    expect(pkg.scripts.prestart).toMatch(/^node src\/check-node\.cjs && /);
    expect(pkg.scripts.pretest).toBe('node src/check-node.cjs');
    expect(readFileSync(new URL('../../.npmrc', import.meta.url), 'utf8')).toMatch(/^engine-strict=true$/m);
  });
});
