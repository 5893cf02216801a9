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
    // Network tests bind loopback ports; two cores on CI. The suite waits on real and simulated venue
    // clocks far more than it computes (a whole run keeps ~20 % of two cores busy), so four workers
    // halve its wall time (~440 s with two, ~250 s with four, measured on 2 cores) without crowding
    // the tests that have timing bounds; the seeded chaos runs are split into files for the same reason.
    maxWorkers: 4,
  },
});
