// The operator against a real API server, as the chart installs it: RSS and reconcile time
// against the number of Channels.
//
//   npm run bench:operator                         100, 300 and 1,000 Channels
//   node bench/operator.ts [--counts 100,300,1000] [--idle-s 15] [--json out.json]
//
// For each count: a fresh namespace with the chart's ServiceAccounts and Roles, one operator
// process as the image runs it (the tsc build, the image's ENV) with exactly the chart's args and
// environment (test/helpers/chart-env.ts), idle
// RSS before any Channel exists; then N Secrets + N Channels created at once (`kubectl create`,
// one Secret per Channel as with real credentials); the time until every Channel's status says
// Accepted=True (read through the API, every 500 ms); the peak RSS while converging (from
// /proc, every 200 ms); the operator's own reconcile histogram; and, after `--idle-s` idle, its
// RSS with the V8 heap and external (native) memory from its /metrics.

import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { startControlPlane } from '../test/cluster/control-plane.ts';
import { installChart, rssMiB, until } from '../test/helpers/chart-procs.ts';
import { REPO } from '../test/helpers/process.ts';
import { machine, metric, table } from './redis-fleet.ts';

const { values: args } = parseArgs({
  options: {
    counts: { type: 'string', default: '100,300,1000' },
    'idle-s': { type: 'string', default: '15' },
    json: { type: 'string' },
  },
});
const COUNTS = args.counts!.split(',').map(Number);
const IDLE_MS = Number(args['idle-s']) * 1000;

interface Row {
  channels: number;
  idleEmptyMiB: number;
  applyMs: number;
  acceptedMs: number;
  peakMiB: number;
  idleMiB: number;
  heapUsedMiB: number;
  externalMiB: number;
  reconciles: number;
  reconcileMeanMs: number;
}

const mib = (bytes: number) => bytes / 1024 / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function objectsYaml(n: number): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    docs.push(`apiVersion: v1
kind: Secret
metadata: { name: creds-${i} }
stringData: { apiKey: sk-bench-${i}-0123456789abcdef }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: ch-${i} }
spec:
  provider: openai-compatible
  baseURL: http://upstream-${i % 10}.example.test/v1
  apiKeySecretRef: { name: creds-${i} }
  priority: ${i % 3}
  weight: ${1 + (i % 5)}
  models:
    - { name: model-${i % 50}, pricing: { inputPer1M: "0.15", outputPer1M: "0.60" } }
    - { name: shared-model }
`);
  }
  return docs.join('---\n');
}

async function main() {
  // The image runs the tsc build with the image's ENV (NODE_OPTIONS); so does this benchmark.
  const build = spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
  const cp = await startControlPlane();
  console.error(`control plane ready in ${cp.startupMs} ms`);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const rows: Row[] = [];
  try {
    for (const n of COUNTS) {
      const ns = `bench-${n}`;
      const install = await installChart(cp, ns, [], [], { built: true });
      const op = await install.startOperator();
      await until('leader', () => op.isLeader(), 30_000);
      await sleep(5000);
      const idleEmptyMiB = await rssMiB(op.proc.child.pid!);

      let peakMiB = 0;
      const sampler = setInterval(() => {
        void rssMiB(op.proc.child.pid!).then((v) => {
          peakMiB = Math.max(peakMiB, v);
        });
      }, 200);
      const t0 = performance.now();
      const created = await cp.kubectl(['-n', ns, 'create', '-f', '-'], {
        input: objectsYaml(n),
        timeoutMs: 600_000,
      });
      if (created.code !== 0) throw new Error(created.stderr);
      const applyMs = performance.now() - t0;
      await until(
        `${n} Channels Accepted`,
        async () => {
          const list = (await custom.listNamespacedCustomObject({
            group: 'kuberelay.io',
            version: 'v1alpha1',
            namespace: ns,
            plural: 'channels',
          })) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
          const ok = list.items.filter((c) =>
            c.status?.conditions?.some((x) => x.type === 'Accepted' && x.status === 'True'),
          ).length;
          return ok === n || undefined;
        },
        600_000,
      );
      const acceptedMs = performance.now() - t0;
      await sleep(IDLE_MS);
      clearInterval(sampler);
      const idleMiB = await rssMiB(op.proc.child.pid!);
      const base = op.metricsUrl.replace(/\/metrics$/, '');
      const m = (name: string) => metric(base, name);
      const count = await m('kuberelay_operator_reconcile_duration_seconds_count');
      const sum = await m('kuberelay_operator_reconcile_duration_seconds_sum');
      const row: Row = {
        channels: n,
        idleEmptyMiB,
        applyMs,
        acceptedMs,
        peakMiB,
        idleMiB,
        heapUsedMiB: mib(await m('kuberelay_operator_nodejs_heap_size_used_bytes')),
        externalMiB: mib(await m('kuberelay_operator_nodejs_external_memory_bytes')),
        reconciles: count,
        reconcileMeanMs: count > 0 ? (sum / count) * 1000 : Number.NaN,
      };
      rows.push(row);
      console.error(JSON.stringify(row));
      for (const p of install.procs) p.child.kill('SIGTERM');
      await Promise.all(install.procs.map((p) => p.exited()));
    }
  } finally {
    await cp.stop();
  }
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  console.log(machine());
  console.log(
    table(
      [
        'Channels',
        'RSS idle, none (MiB)',
        'create all (s)',
        'to all Accepted (s)',
        'RSS peak (MiB)',
        'RSS idle after (MiB)',
        'V8 heap used (MiB)',
        'external (MiB)',
        'reconciles',
        'reconcile mean (ms)',
      ],
      rows.map((r) => [
        String(r.channels),
        f(r.idleEmptyMiB),
        f(r.applyMs / 1000, 1),
        f(r.acceptedMs / 1000, 1),
        f(r.peakMiB),
        f(r.idleMiB),
        f(r.heapUsedMiB),
        f(r.externalMiB, 1),
        String(r.reconciles),
        f(r.reconcileMeanMs, 1),
      ]),
    ),
  );
  if (args.json) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(args.json, JSON.stringify({ machine: machine(), rows }, null, 2));
  }
}

await main();
