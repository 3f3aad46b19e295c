// Starts the one-node cluster (test/node/cluster.sh: control plane, containerd, kubelet,
// kube-proxy, CoreDNS, images built from the Dockerfile) once for the `node` tier and hands its
// settings to the tests. cluster.sh's watchdog tears it down if this process dies first.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

const script = join(import.meta.dirname, 'cluster.sh');

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // Output goes straight to the run's log: build and start times are printed there.
    const child = spawn('bash', [script, ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, OWNER_PID: String(process.pid) },
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`cluster.sh ${args.join(' ')} exited with ${code}`)),
    );
  });
}

async function readEnv(dir: string): Promise<Record<string, string>> {
  return Object.fromEntries(
    (await readFile(join(dir, 'env'), 'utf8'))
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // While developing: a cluster left up by `cluster.sh up DIR` is reused (and left up).
  const reuse = process.env['KUBERELAY_NODE_CLUSTER'];
  if (reuse) {
    project.provide('node', await readEnv(reuse));
    return async () => {};
  }
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-node-'));
  const started = Date.now();
  try {
    await run(['up', dir]);
  } catch (err) {
    await run(['down', dir]).catch(() => {});
    throw err;
  }
  const env = await readEnv(dir);
  console.log(`[node] one-node cluster up in ${Math.round((Date.now() - started) / 1000)} s (${dir})`);
  project.provide('node', env);
  return () => run(['down', dir]);
}
