import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // A native crash then fails one file, not the whole run.
    pool: 'forks',
    // gc() lets the allocation tests start from an empty young generation.
    poolOptions: { forks: { execArgv: ['--expose-gc'] } },
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
