import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The bench smoke test saturates both cores for half a minute: it runs after this suite, alone
    // (bench/vitest.config.ts, the last step of `npm test`), never beside tests with timing bounds.
    exclude: ['test/bench/**', '**/node_modules/**'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Network tests bind loopback ports; two cores on CI.
    maxWorkers: 2,
  },
});
