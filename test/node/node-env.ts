// Helpers of the node tier: what a user does with kubectl and helm against the one-node
// cluster of global-setup.ts, plus the checks every test ends with.
import { execFile } from 'node:child_process';
import { chown, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { type ClusterClient, connect } from '../cluster/control-plane.ts';

const run = promisify(execFile) as unknown as (cmd: string, args: string[]) => Promise<{ stdout: string }>;

export const REPO = join(import.meta.dirname, '../..');
export const CHART = join(REPO, 'charts/kuberelay');

export interface NodeCluster extends ClusterClient {
  env: Record<string, string>;
  /** kubectl that fails the test with its stderr on a non-zero exit. */
  k(args: string[], input?: string, timeoutMs?: number): Promise<string>;
  /** helm, likewise. */
  h(args: string[], timeoutMs?: number): Promise<string>;
}

export function nodeCluster(): NodeCluster {
  const env = inject('node');
  const client = connect(env['KUBECONFIG']!);
  const k = async (args: string[], input?: string, timeoutMs = 60_000) => {
    const r = await client.kubectl(args, { input, timeoutMs });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const h = async (args: string[], timeoutMs = 600_000) => {
    const r = await client.helm(args, { timeoutMs });
    if (r.code !== 0) throw new Error(`helm ${args.join(' ')}: ${r.stdout}\n${r.stderr.trim()}`);
    return r.stdout;
  };
  return { ...client, env, k, h };
}

/**
 * The chart's values that point it at the images imported into containerd (never pulled): the
 * project image and the bundled Redis (Debian's redis-server, standing in for redis:7.4-alpine).
 */
export function localImageValues(env: Record<string, string>): string[] {
  const image = (ref: string) => [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)];
  const [repository, tag] = image(env['KUBERELAY_IMAGE']!);
  const [redisRepository, redisTag] = image(env['REDIS_IMAGE']!);
  return [
    `image.repository=${repository}`,
    `image.tag=${tag}`,
    'image.pullPolicy=Never',
    `redis.bundled.image.repository=${redisRepository}`,
    `redis.bundled.image.tag=${redisTag}`,
    'redis.bundled.image.pullPolicy=Never',
  ].flatMap((v) => ['--set', v]);
}

/**
 * No StorageClass on this node: a hostPath PersistentVolume bound to the claim the chart makes.
 * hostPath ignores fsGroup, so the directory belongs to the image's user (10001).
 */
export async function hostPathVolume(c: NodeCluster, namespace: string, claim: string): Promise<void> {
  const path = join(c.env['PV_DIR']!, `${namespace}-${claim}`);
  await mkdir(path, { recursive: true });
  await chown(path, 10001, 10001);
  const pv = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `${namespace}-${claim}` },
    spec: {
      capacity: { storage: '2Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      claimRef: { namespace, name: claim },
      hostPath: { path, type: 'Directory' },
    },
  };
  await c.k(['apply', '-f', '-'], JSON.stringify(pv));
}

/** The mock provider as a user would run it: the project image's `kuberelay mock-upstream`. */
export async function deployMockUpstreams(
  c: NodeCluster,
  namespace: string,
  ports: number[],
  args: string[] = [],
): Promise<void> {
  const labels = { app: 'mock-upstream' };
  const manifest = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'mock-upstream', namespace },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: ports.map((port) => ({
                name: `mock-${port}`,
                image: c.env['KUBERELAY_IMAGE'],
                imagePullPolicy: 'Never',
                args: ['mock-upstream', '--port', String(port), '--name', `mock-${port}`, ...args],
                ports: [{ containerPort: port }],
                readinessProbe: { tcpSocket: { port }, periodSeconds: 1 },
                resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              })),
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'mock-upstream', namespace },
        spec: { selector: labels, ports: ports.map((port) => ({ name: `p${port}`, port })) },
      },
    ],
  };
  await c.k(['apply', '-f', '-'], JSON.stringify(manifest));
  await rolledOut(c, namespace, 'mock-upstream');
}

/** Waits for a Deployment's rollout; when it times out, the error says what the node saw. */
export async function rolledOut(
  c: NodeCluster,
  namespace: string,
  deployment: string,
  seconds = 180,
): Promise<void> {
  const args = ['-n', namespace, 'rollout', 'status', `deploy/${deployment}`, `--timeout=${seconds}s`];
  const r = await c.kubectl(args, { timeoutMs: (seconds + 20) * 1000 });
  if (r.code === 0) return;
  throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}\n${await nodeReport(c, namespace)}`);
}

/** The pods, their events and the node daemons' last log lines: why a pod is not Ready. */
async function nodeReport(c: NodeCluster, namespace: string): Promise<string> {
  const out = async (args: string[]) => {
    const r = await c.kubectl(args, { timeoutMs: 30_000 });
    return `$ kubectl ${args.join(' ')}\n${r.stdout}${r.stderr}`;
  };
  const tail = async (name: string) => {
    const text = await readFile(join(c.env['LOG_DIR'] ?? '/nonexistent', `${name}.log`), 'utf8').catch(
      (err: Error) => err.message,
    );
    return `--- last lines of ${name}.log\n${text.split('\n').slice(-40).join('\n')}`;
  };
  const parts = [
    await out(['-n', namespace, 'get', 'pods', '-o', 'wide']),
    await out(['-n', namespace, 'describe', 'pods']),
    await out(['get', 'events', '-A', '--sort-by=.lastTimestamp']),
    await out(['describe', 'nodes']),
    await tail('kubelet'),
    await tail('containerd'),
  ];
  return parts.join('\n');
}

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string };
  status: {
    phase: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      name: string;
      restartCount: number;
      ready: boolean;
      containerID?: string;
      lastState?: { terminated?: { reason?: string; exitCode?: number } };
      state?: { terminated?: { reason?: string } };
    }[];
  };
}

export async function pods(c: NodeCluster, namespace: string, selector?: string): Promise<PodJson[]> {
  const out = await c.k([
    '-n',
    namespace,
    'get',
    'pods',
    '-o',
    'json',
    ...(selector ? ['-l', selector] : []),
  ]);
  return (JSON.parse(out) as { items: PodJson[] }).items;
}

/** Every container that restarted or was OOM-killed, as "pod/container: why" lines. */
export async function restartedContainers(c: NodeCluster, namespace: string): Promise<string[]> {
  const bad: string[] = [];
  for (const p of await pods(c, namespace)) {
    for (const s of p.status.containerStatuses ?? []) {
      const last = s.lastState?.terminated;
      const now = s.state?.terminated;
      if (s.restartCount > 0 || last || now?.reason === 'OOMKilled') {
        const why = last ? `${last.reason ?? '?'} exit ${last.exitCode ?? '?'}` : `now ${now?.reason}`;
        bad.push(`${p.metadata.name}/${s.name}: restarts=${s.restartCount} last=${why}`);
      }
    }
  }
  return bad;
}

/** The host PID of a container's init process (containerd's task), from its `containerd://ID`. */
export async function containerPid(c: NodeCluster, containerId: string): Promise<number> {
  const id = containerId.replace(/^containerd:\/\//, '');
  const { stdout: r } = await run(c.env['CTR']!, [
    '--address',
    c.env['CTR_ADDRESS']!,
    '-n',
    'k8s.io',
    'tasks',
    'ls',
  ]);
  const line = r.split('\n').find((l) => l.startsWith(`${id} `));
  const pid = Number(line?.trim().split(/\s+/)[1]);
  if (!(pid > 1)) throw new Error(`no containerd task ${id}:\n${r}`);
  return pid;
}

/** Polls check() until it returns a value (not undefined), or throws with the last error. */
export async function eventually<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${last}`);
    await sleep(500);
  }
}
