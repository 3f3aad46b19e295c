import { defineConfig } from 'vitest/config';

// Five tiers: `unit` (pure, in-process), `integration` (real sockets, child processes, local
// servers such as Redis/PostgreSQL), `fault` (relay, Redis, PostgreSQL and upstreams as separate
// processes, killed, stalled and broken on purpose), `e2e` (a real kube-apiserver + etcd, see
// test/cluster/), `node` (a real one-node cluster running the chart's pods, see test/node/). `npm test` runs them all; `npm run test:fast` is unit + integration.
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
          name: 'fault',
          include: ['test/fault/**/*.test.ts'],
          testTimeout: 90_000,
          hookTimeout: 120_000,
          // Each file runs a whole deployment of processes; one at a time keeps their bounds honest.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 1_800_000,
          fileParallelism: false,
          globalSetup: ['test/node/global-setup.ts'],
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
