/** The real entry point as a child process, for the tests that need the env path, signals and exit codes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A loopback port free right now (the daemon's listeners need fixed ports the test can read back). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

export interface SpawnedDaemon {
  readonly proc: ChildProcess;
  /** stdout and stderr chunks, in arrival order. */
  readonly output: string[];
  readonly exited: Promise<number | null>;
}

/**
 * `node src/main.ts` started in `cwd` (where it reads `.env`), with only PATH and `env` in its environment.
 * `shipped`: the launcher `npm start` and the image run instead (bin/kline-connector → dist/daemon/main.js,
 * which must have been built), with node's directory first on PATH as a fresh shell would have it.
 */
export function spawnDaemon(env: Record<string, string>, cwd = ROOT, shipped = false): SpawnedDaemon {
  const output: string[] = [];
  const [command, args] = shipped ? ['sh', [path.join(ROOT, 'bin/kline-connector')]] : [process.execPath, [path.join(ROOT, 'src/main.ts')]];
  const pathVar = shipped ? `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}` : (process.env.PATH ?? '');
  const proc = spawn(command, args, {
    cwd,
    env: { PATH: pathVar, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (d: Buffer) => {
    output.push(d.toString('utf8'));
  });
  proc.stderr.on('data', (d: Buffer) => {
    output.push(d.toString('utf8'));
  });
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => {
      resolve(code);
    });
  });
  return { proc, output, exited };
}
