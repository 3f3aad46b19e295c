import { parseAllDocuments } from 'yaml';
import type { RunResult } from '../cluster/control-plane.ts';

/**
 * What the chart runs, as a local process: `helm template` of charts/kuberelay, then the args
 * and environment of a Deployment's container exactly as rendered. Tests start the operator and
 * the relay from this, never from settings of their own (DESIGN.md, "Safety defaults").
 *
 * The only substitutions are what a pod gets from Kubernetes rather than from the chart, and
 * each must name something the chart rendered (so nothing test-only can slip in):
 * - `fieldRef` values (POD_NAME, POD_NAMESPACE) from `pod`;
 * - `secretKeyRef` values from the Secrets the same render produced, or from `secrets`;
 * - `localize`: ports a pod has to itself (PORT, METRICS_PORT ...) and in-cluster addresses
 *   (a Redis Service name), replaced by free ports / local addresses;
 * - `paths`: mounted files and volumes in args and env, replaced by local paths;
 * - `--kubeconfig FILE` is appended: it stands for the ServiceAccount token the pod mounts.
 */

export interface ChartContainer {
  args: string[];
  env: Record<string, string>;
}

export interface RenderedChart {
  objects: Record<string, unknown>[];
  container(deployment: string, container: string, pod: { name: string; namespace: string }): ChartContainer;
}

export async function renderChart(
  helm: (args: string[]) => Promise<RunResult>,
  chart: string,
  release: string,
  namespace: string,
  set: string[] = [],
): Promise<RenderedChart> {
  const r = await helm([
    'template',
    release,
    chart,
    '--namespace',
    namespace,
    ...set.flatMap((s) => ['--set', s]),
  ]);
  if (r.code !== 0) throw new Error(`helm template: ${r.stderr}`);
  const objects = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o !== null);
  const secrets = new Map<string, Record<string, string>>();
  for (const o of objects) {
    if (o.kind !== 'Secret') continue;
    const m = o.metadata as { name: string };
    const data = Object.fromEntries(
      Object.entries((o.data ?? {}) as Record<string, string>).map(([k, v]) => [
        k,
        Buffer.from(v, 'base64').toString('utf8'),
      ]),
    );
    secrets.set(m.name, { ...data, ...((o.stringData ?? {}) as Record<string, string>) });
  }
  return {
    objects,
    container(deployment, name, pod) {
      const d = objects.find(
        (o) => o.kind === 'Deployment' && (o.metadata as { name: string }).name === deployment,
      ) as { spec: { template: { spec: { containers: RenderedContainer[] } } } } | undefined;
      if (!d) throw new Error(`the chart renders no Deployment ${deployment}`);
      const c = d.spec.template.spec.containers.find((x) => x.name === name);
      if (!c) throw new Error(`Deployment ${deployment} has no container ${name}`);
      const env: Record<string, string> = {};
      for (const e of c.env ?? []) env[e.name] = envValue(e, pod, secrets);
      return { args: [...(c.args ?? [])], env };
    },
  };
}

interface RenderedContainer {
  name: string;
  args?: string[];
  env?: RenderedEnv[];
}

interface RenderedEnv {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string };
  };
}

function envValue(
  e: RenderedEnv,
  pod: { name: string; namespace: string },
  secrets: Map<string, Record<string, string>>,
): string {
  if (e.value !== undefined) return String(e.value);
  const field = e.valueFrom?.fieldRef?.fieldPath;
  if (field === 'metadata.name') return pod.name;
  if (field === 'metadata.namespace') return pod.namespace;
  const ref = e.valueFrom?.secretKeyRef;
  if (ref) {
    const v = secrets.get(ref.name)?.[ref.key];
    // Secrets the chart only references (existingSecret) are resolved by the caller's `secrets`.
    return v ?? `\${secret:${ref.name}/${ref.key}}`;
  }
  throw new Error(`env ${e.name}: unsupported source ${JSON.stringify(e.valueFrom)}`);
}

/**
 * The `ENV` of the image's final stage (Dockerfile): part of every container's environment, under
 * what the chart sets (as Kubernetes merges them).
 */
export async function imageEnv(dockerfile: string): Promise<Record<string, string>> {
  const { readFile } = await import('node:fs/promises');
  const text = (await readFile(dockerfile, 'utf8')).replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m);
  const env: Record<string, string> = {};
  for (const line of stages.at(-1)!.split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const [, k, v] of m[1]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g))
      env[k!] = v!.replace(/^"|"$/g, '');
  }
  return env;
}

export interface LocalizeOptions {
  /** Env values to replace (ports, in-cluster addresses); each var must be one the chart set. */
  env?: Record<string, string>;
  /** `${secret:NAME/KEY}` values of Secrets the chart references but does not create. */
  secrets?: Record<string, string>;
  /** In-pod paths (mounts) -> local paths, in args and env values. */
  paths?: Record<string, string>;
  kubeconfig: string;
}

/** The container as a local process: args for `kuberelay` and its environment. */
export function localize(c: ChartContainer, o: LocalizeOptions): ChartContainer {
  const env = { ...c.env };
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (!(k in env)) throw new Error(`the chart sets no ${k}; a test may not add settings of its own`);
    env[k] = v;
  }
  const path = (s: string) => o.paths?.[s] ?? s;
  for (const [k, v] of Object.entries(env)) {
    const m = /^\$\{secret:(.+)\}$/.exec(v);
    if (m) {
      const resolved = o.secrets?.[m[1]!];
      if (resolved === undefined) throw new Error(`env ${k} needs Secret key ${m[1]}; pass it in secrets`);
      env[k] = resolved;
    } else {
      env[k] = path(v);
    }
  }
  return { args: [...c.args.map(path), '--kubeconfig', o.kubeconfig], env };
}
