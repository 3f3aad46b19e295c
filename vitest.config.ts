import { defineConfig } from 'vitest/config';

// Three tiers: `unit` (pure, in-process), `integration` (real sockets, child processes, local
// servers such as Redis/PostgreSQL), `e2e` (a real kube-apiserver + etcd, see test/cluster/).
// `npm test` runs them all; `npm run test:fast` skips e2e while developing.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          globalSetup: ['test/e2e/global-setup.ts'],
        },
      },
    ],
  },
});
