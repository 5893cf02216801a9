import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The bench smoke test (`npm run bench -- --quick` end to end) on its own: `npm test` runs it after the
 * main suite has finished, one file in one worker, so its flood of loopback traffic never shares the
 * cores with tests that have timing bounds (connector-contract.md §8). `npm run test:bench` alone.
 */
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/bench/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
