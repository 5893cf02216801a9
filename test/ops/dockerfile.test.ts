/**
 * No Docker engine in CI: the Dockerfile and .dockerignore are linted statically for the
 * properties that matter at runtime (signals, non-root, production deps, base image, read-only fs).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Instructions grouped by stage (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Array<{ from: string; name?: string; body: Instruction[] }> } {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Array<{ from: string; name?: string; body: Instruction[] }> = [];
  for (const line of logical) {
    const sp = line.search(/\s/);
    const op = line.slice(0, sp).toUpperCase();
    const rest = line.slice(sp + 1).trim();
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=');
      args.set(k!, v ?? '');
    } else if (op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      const from = m[1]!.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? '');
      stages.push(m[2] === undefined ? { from, body: [] } : { from, name: m[2], body: [] });
    } else {
      stages.at(-1)?.body.push({ op, args: rest });
    }
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;
const ops = (op: string) => runtime.body.filter((i) => i.op === op);

describe('Dockerfile', () => {
  it('is multi-stage on node 24 bookworm-slim, every stage pinned to the same digest', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    for (const s of dockerfile.stages) expect(s.from).toMatch(/^node:24(\.\d+)*-bookworm-slim@sha256:[0-9a-f]{64}$/);
    expect(new Set(dockerfile.stages.map((s) => s.from)).size).toBe(1);
    // A digest is only as good as its provenance: the Dockerfile says where it was read.
    const comments = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')
      .split(/\r?\n/)
      .filter((l) => l.startsWith('#'))
      .join('\n');
    expect(comments).toMatch(/docker-library\/repo-info\b.*commit [0-9a-f]{40}/s);
  });

  it('builds with npm ci and npm run build, and takes production dependencies from a stage that ran npm ci --omit=dev', () => {
    const build = dockerfile.stages[0]!.body.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(build.some((r) => /\bnpm ci\b/.test(r) && !r.includes('--omit=dev'))).toBe(true);
    expect(build.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    const modules = ops('COPY')
      .map((i) => /--from=(\S+)\s+\/app\/node_modules\s+\.\/node_modules$/.exec(i.args)?.[1])
      .filter((x) => x !== undefined);
    expect(modules).toHaveLength(1);
    const deps = dockerfile.stages.find((s) => s.name === modules[0]);
    expect(deps, `stage ${modules[0]}`).toBeDefined();
    expect(deps!.body.some((i) => i.op === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    expect(ops('ENV').some((i) => /\bNODE_ENV=production\b/.test(i.args))).toBe(true);
  });

  it('has no package manager in the runtime stage: none runs there, and npm, npx, corepack and yarn are removed', () => {
    const run = ops('RUN').map((i) => i.args);
    // Only removals run in the runtime stage; no install, no build, no package manager.
    expect(run.some((r) => /\b(npm|npx|yarn|corepack|pnpm)\s+(ci|install|run|exec|enable|add)\b/.test(r))).toBe(false);
    const removed = run.filter((r) => /^rm\s+-rf?\s/.test(r)).flatMap((r) => r.split(/\s+/));
    for (const p of [
      '/usr/local/lib/node_modules/npm',
      '/usr/local/lib/node_modules/corepack',
      '/usr/local/bin/npm',
      '/usr/local/bin/npx',
      '/usr/local/bin/corepack',
      '/usr/local/bin/yarn',
      '/usr/local/bin/yarnpkg',
    ])
      expect(removed, p).toContain(p);
    // The removal is the first thing the stage does, so no later layer can call npm.
    expect(runtime.body.find((i) => i.op === 'RUN')?.args).toMatch(/^rm\s/);
    expect(ops('ENV').some((i) => /NPM_CONFIG/.test(i.args))).toBe(false);
  });

  it('runs as a numeric non-root user with an exec-form CMD of the launcher `npm start` runs (not npm), and sets no runtime flag of its own', () => {
    const users = ops('USER');
    expect(users.at(-1)?.args).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    const cmd = ops('CMD').at(-1)?.args ?? '';
    expect(JSON.parse(cmd)).toEqual(['sh', 'bin/kline-connector']);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start']).toBe((JSON.parse(cmd) as string[]).join(' '));
    expect(ops('COPY').some((i) => /^bin\s+\.\/bin$/.test(i.args))).toBe(true);
    // The flags live in the launcher only (test/ops/launcher.test.ts runs it).
    expect(ops('ENV').some((i) => /NODE_OPTIONS|MALLOC_ARENA_MAX/.test(i.args))).toBe(false);
    expect(ops('ENTRYPOINT')).toEqual([]);
    // The launcher runs the bundle `npm run build` makes of src/main.ts (bin/build.ts; test/ops/bundle.test.ts runs it).
    expect(pkg.scripts['build']).toBe('node bin/build.ts');
    expect(readFileSync(path.join(ROOT, 'bin/kline-connector'), 'utf8')).toMatch(/^exec node .*"\$\(dirname "\$0"\)\/\.\.\/dist\/daemon\/main\.js" "\$@"$/m);
    expect(readFileSync(path.join(ROOT, 'bin/build.ts'), 'utf8')).toMatch(/entryPoints: \['src\/main\.ts'\]/);
  });

  it('exposes the relay and health ports and ships the config presets', () => {
    expect(ops('EXPOSE').flatMap((i) => i.args.split(/\s+/)).sort()).toEqual(['8765', '8766']);
    const copies = ops('COPY').map((i) => i.args);
    expect(copies.some((c) => /^config\s+\.\/config$/.test(c))).toBe(true);
    expect(copies.some((c) => /--from=build\s+\/app\/dist\s+\.\/dist/.test(c))).toBe(true);
    expect(existsSync(path.join(ROOT, 'config/production.json'))).toBe(true);
  });

  it('needs no writable root filesystem: no runtime writes, no chown of the app to the runtime user', () => {
    const all = runtime.body.map((i) => `${i.op} ${i.args}`).join('\n');
    expect(all).not.toMatch(/--chown=1000|chown -R/);
    expect(ops('VOLUME')).toEqual([]);
    expect(all).not.toMatch(/\.env\b/);
  });
});

describe('.dockerignore', () => {
  const lines = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));

  it('keeps secrets, dependencies and build output out of the context', () => {
    // Allow-list style: everything is excluded, then only the build inputs are re-included.
    expect(lines[0]).toBe('*');
    const included = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    for (const never of ['node_modules', 'dist', '.git', '.env', 'coverage']) expect(included).not.toContain(never);
    expect(lines).toContain('**/.env*');
  });

  it('includes everything the Dockerfile copies from the build context', () => {
    const included = new Set(lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, '')));
    const sources = dockerfile.stages
      .flatMap((s) => s.body)
      .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) expect(included.has(src), src).toBe(true);
  });
});
