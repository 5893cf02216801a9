/**
 * What the daemon loads at start is RSS it keeps (ARCHITECTURE.md, Performance / Memory). These are
 * the imports that cost megabytes for nothing the daemon uses; each was measured and removed, and this
 * keeps them out. Run in a fresh node process: vitest's own process has loaded everything already.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Import the object graph (nothing started) in a fresh process; report what got loaded. */
function loaded(): Promise<{ builtins: string[]; packages: string[] }> {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(path.join(ROOT, 'src/app.ts'))});
    const files = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({
      builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)),
      packages: files.map((f) => f.replace(/^.*node_modules\\//, '')),
    }));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT }, (err, stdout) => {
      if (err !== null) reject(new Error(`the import failed: ${err.message}`));
      else resolve(JSON.parse(stdout) as { builtins: string[]; packages: string[] });
    });
  });
}

describe('start-up footprint', () => {
  it("loads neither Node's bundled undici, nor undici's index, nor the NATS client when no JetStream sink is configured", async () => {
    const { builtins, packages } = await loaded();
    // Sanity: the graph did load (ws, fastify, the undici Pool the REST client uses).
    expect(packages.some((p) => p.startsWith('ws/'))).toBe(true);
    expect(packages).toContain('undici/lib/dispatcher/pool.js');
    // An ESM import of node:http reads its lazy WebSocket getters, which load this (~13 MB).
    expect(builtins.filter((b) => b.startsWith('internal/deps/undici'))).toEqual([]);
    // undici's index: fetch, WebSocket, caches, for a daemon that needs one Pool.
    expect(packages).not.toContain('undici/index.js');
    expect(packages.filter((p) => p.startsWith('@nats-io/'))).toEqual([]);
  });
});
