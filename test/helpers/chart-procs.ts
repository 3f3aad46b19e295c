import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterClient } from '../cluster/control-plane.ts';
import { type ChartContainer, imageEnv, localize, type RenderedChart, renderChart } from './chart-env.ts';
import { freePort, kuberelay, type Proc, REPO, spawnProc } from './process.ts';

export { until } from './until.ts';

/**
 * The operator and relay processes exactly as the chart runs them (see chart-env.ts), for e2e
 * tests against the real API server, with the chart's own ServiceAccounts and Roles applied.
 */

export const CHART = fileURLToPath(new URL('../../charts/kuberelay', import.meta.url));
export const CRDS = fileURLToPath(new URL('../../crds/', import.meta.url));
export const RELEASE = 'kr';
const DOCKERFILE = fileURLToPath(new URL('../../Dockerfile', import.meta.url));

export interface ChartInstall {
  namespace: string;
  chart: RenderedChart;
  operatorKubeconfig: string;
  relayKubeconfig: string;
  startOperator(pod?: string): Promise<OperatorProc>;
  startRelay(pod?: string): Promise<RelayProc>;
  /** Every process started here, for afterAll. */
  procs: Proc[];
}

export interface OperatorProc {
  proc: Proc;
  metricsUrl: string;
  isLeader(): Promise<boolean>;
}

export interface RelayProc {
  proc: Proc;
  url: string;
}

/** Vars a developer's shell or CI may export that the chart does not set: blanked for children. */
const AMBIENT = ['REDIS_URL', 'DATABASE_URL', 'ADMIN_TOKEN', 'KUBECONFIG', 'WATCH_NAMESPACES'];

function chartProcess(args: string[], env: Record<string, string>, built: boolean): Proc {
  const blank: Record<string, string> = {};
  for (const k of Object.keys(process.env)) {
    if ((k.startsWith('KUBERELAY_') || AMBIENT.includes(k) || k === 'NODE_OPTIONS') && !(k in env))
      blank[k] = '';
  }
  // The image runs the tsc build (`npm run build`); tests run the sources unless asked.
  return kuberelay(args, { ...blank, ...env }, built ? { cli: join(REPO, 'dist', 'cli', 'index.js') } : {});
}

/**
 * Creates `namespace`, applies the CRDs and the chart's ServiceAccounts and RBAC rendered with
 * `set` (Helm values a user would pass), and mints the two ServiceAccounts' kubeconfigs.
 */
export async function installChart(
  k: ClusterClient,
  namespace: string,
  set: string[] = [],
  extraNamespaces: string[] = [],
  opts: { built?: boolean } = {},
): Promise<ChartInstall> {
  const image = await imageEnv(DOCKERFILE);
  const crds = await k.kubectl(['apply', '--server-side', '-f', CRDS]);
  if (crds.code !== 0) throw new Error(crds.stderr);
  await k.kubectl(['wait', '--for=condition=Established', 'crd/channels.kuberelay.io']);
  for (const ns of [namespace, ...extraNamespaces]) await k.kubectl(['create', 'namespace', ns]);
  const chart = await renderChart((a) => k.helm(a), CHART, RELEASE, namespace, set);
  const rbac = chart.objects.filter((o) =>
    ['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind as string),
  );
  const applied = await k.kubectl(['apply', '-f', '-'], {
    input: rbac.map((o) => JSON.stringify(o)).join('\n'),
  });
  if (applied.code !== 0) throw new Error(`applying the chart's RBAC: ${applied.stderr}`);
  const operatorKubeconfig = await k.mintServiceAccountKubeconfig(namespace, `${RELEASE}-kuberelay-operator`);
  const relayKubeconfig = await k.mintServiceAccountKubeconfig(namespace, `${RELEASE}-kuberelay-relay`);
  const procs: Proc[] = [];
  let n = 0;
  // The bundled Redis (the default) as the kubelet would run it: a redis-server with the chart's
  // args, its Service address replaced by a local one. Started with the first operator or relay
  // (so a test that starts neither has none to stop), and killed with them.
  let bundled: Promise<string | undefined> | undefined;
  const redisEnv = async (c: ChartContainer): Promise<Record<string, string>> => {
    if (c.env['REDIS_URL'] !== `redis://${RELEASE}-kuberelay-redis:6379`) return {};
    bundled ??= bundledRedis(chart, procs);
    const url = await bundled;
    return url === undefined ? {} : { REDIS_URL: url };
  };

  return {
    namespace,
    chart,
    operatorKubeconfig,
    relayKubeconfig,
    procs,
    async startOperator(pod = `${RELEASE}-kuberelay-operator-${n++}`) {
      const port = await freePort();
      const data = await mkdtemp(join(tmpdir(), 'kuberelay-operator-'));
      const rendered = chart.container(`${RELEASE}-kuberelay-operator`, 'operator', { name: pod, namespace });
      const c = localize(withImageEnv(image, rendered), {
        env: { METRICS_PORT: String(port), ...(await redisEnv(rendered)) },
        paths: { '/data': data },
        kubeconfig: operatorKubeconfig,
      });
      const proc = chartProcess(c.args, c.env, opts.built === true);
      procs.push(proc);
      await proc.waitFor(/operator started/, 60_000);
      const metricsUrl = `http://127.0.0.1:${port}/metrics`;
      return {
        proc,
        metricsUrl,
        isLeader: async () => /^kuberelay_operator_leader 1$/m.test(await (await fetch(metricsUrl)).text()),
      };
    },
    async startRelay(pod = `${RELEASE}-kuberelay-relay-${n++}`) {
      const [port, adminPort] = [await freePort(), await freePort()];
      const data = await mkdtemp(join(tmpdir(), 'kuberelay-relay-data-'));
      const rendered = chart.container(`${RELEASE}-kuberelay-relay`, 'relay', { name: pod, namespace });
      const c = localize(withImageEnv(image, rendered), {
        env: { PORT: String(port), ADMIN_PORT: String(adminPort), ...(await redisEnv(rendered)) },
        // No kubelet mounts the Secret here: the fallback file is absent, as before the first write.
        paths: { '/etc/kuberelay/config/config.json': join(data, 'mounted-config.json'), '/data': data },
        kubeconfig: relayKubeconfig,
      });
      const proc = chartProcess(c.args, c.env, opts.built === true);
      procs.push(proc);
      await proc.waitFor(/relay listening/, 60_000);
      return { proc, url: `http://127.0.0.1:${port}` };
    },
  };
}

/** Starts the chart's bundled Redis when it renders one; its local URL. */
async function bundledRedis(chart: RenderedChart, procs: Proc[]): Promise<string | undefined> {
  const d = chart.objects.find(
    (o) => o.kind === 'Deployment' && (o.metadata as { name: string }).name === `${RELEASE}-kuberelay-redis`,
  ) as { spec: { template: { spec: { containers: { args: string[] }[] } } } } | undefined;
  if (!d) return undefined;
  const [command, ...args] = d.spec.template.spec.containers[0]!.args;
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-bundled-redis-'));
  const proc = spawnProc(
    command!,
    [...args, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
    process.env,
    () => rmSync(dir, { recursive: true, force: true }),
  );
  procs.push(proc);
  await proc.waitFor(/Ready to accept connections/, 10_000);
  return `redis://127.0.0.1:${port}`;
}

/** The image's ENV under the container's own env, as Kubernetes merges them. */
function withImageEnv(image: Record<string, string>, c: { args: string[]; env: Record<string, string> }) {
  return { args: c.args, env: { ...image, ...c.env } };
}

/** Resident set size of a process, from /proc (Linux), in MiB. */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  return kb / 1024;
}
