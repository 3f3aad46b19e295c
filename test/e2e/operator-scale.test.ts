import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type ClusterClient, connect } from '../cluster/control-plane.ts';
import { type ChartInstall, installChart, rssMiB, until } from '../helpers/chart-procs.ts';

/**
 * 1,000 Channels (each with its own Secret) applied at once to an operator running with the
 * chart's args and environment: every one ends Accepted with one config holding them all. Time
 * and RSS are printed, not asserted (bench/operator.ts measures them, BENCHMARKS.md).
 */

const NS = 'kr-scale';
const N = 1000;

describe('operator at 1,000 Channels', () => {
  let k: ClusterClient;
  let install: ChartInstall;

  beforeAll(async () => {
    k = connect(inject('kubeconfig'));
    install = await installChart(k, NS);
  });
  afterAll(() => {
    for (const p of install?.procs ?? []) p.child.kill('SIGKILL');
  });

  it('converges: all Accepted, one config with every Channel', async () => {
    const op = await install.startOperator();
    await until('leader', () => op.isLeader(), 30_000);
    const docs: string[] = [];
    for (let i = 0; i < N; i++) {
      docs.push(`apiVersion: v1
kind: Secret
metadata: { name: creds-${i} }
stringData: { apiKey: sk-scale-${i} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: ch-${i} }
spec:
  provider: openai-compatible
  baseURL: http://upstream-${i % 10}.example.test/v1
  apiKeySecretRef: { name: creds-${i} }
  models: [{ name: model-${i % 50} }]
`);
    }
    let peak = 0;
    const sampler = setInterval(() => {
      void rssMiB(op.proc.child.pid!).then((v) => {
        peak = Math.max(peak, v);
      });
    }, 250);
    const t0 = Date.now();
    const created = await k.kubectl(['-n', NS, 'create', '-f', '-'], {
      input: docs.join('---\n'),
      timeoutMs: 300_000,
    });
    expect(created.code, created.stderr).toBe(0);
    const kc = new KubeConfig();
    kc.loadFromFile(k.kubeconfigPath);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await until(
      `all ${N} Accepted`,
      async () => {
        const list = (await custom.listNamespacedCustomObject({
          group: 'kuberelay.io',
          version: 'v1alpha1',
          namespace: NS,
          plural: 'channels',
        })) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
        return (
          list.items.filter((c) =>
            c.status?.conditions?.some((x) => x.type === 'Accepted' && x.status === 'True'),
          ).length === N
        );
      },
      300_000,
    );
    clearInterval(sampler);
    console.log(
      `[e2e] ${N} Channels created at once -> all Accepted after ${Date.now() - t0} ms; operator RSS peak ${peak.toFixed(0)} MiB (type-stripped sources)`,
    );
    const secret = await k.kubectl(['-n', NS, 'get', 'secret', 'kuberelay-relay-config', '-o', 'json']);
    const config = JSON.parse(
      Buffer.from(JSON.parse(secret.stdout).data['config.json'], 'base64').toString(),
    );
    expect(config.channels).toHaveLength(N);
  }, 400_000);
});
