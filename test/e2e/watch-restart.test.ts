import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustomObjectsApi, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GROUP, VERSION } from '../../kube/client.ts';
import { ResilientWatch } from '../../kube/watch.ts';
import { type ClusterClient, connect } from '../cluster/control-plane.ts';
import { installChart, until } from '../helpers/chart-procs.ts';

/**
 * A watch whose (re)start itself fails — here the in-cluster way of authenticating, a token file
 * the kubelet has not written yet, so client-node's ListWatch.start() rejects after its list —
 * must not end in an unhandled rejection or a dead watch: it retries with backoff and syncs once
 * it can.
 */

const NS = 'kr-watch-restart';

describe('ResilientWatch restarts after a failed start', () => {
  let k: ClusterClient;
  let watch: ResilientWatch<KubernetesObject> | undefined;
  const rejections: unknown[] = [];
  const onRejection = (err: unknown) => rejections.push(err);

  beforeAll(async () => {
    k = connect(inject('kubeconfig'));
    await installChart(k, NS);
    process.on('unhandledRejection', onRejection);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await watch?.stop();
  });

  it('keeps retrying while the token file is missing, then lists and watches', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kuberelay-token-'));
    const tokenFile = join(dir, 'token');
    const admin = JSON.parse(await (await import('node:fs/promises')).readFile(k.kubeconfigPath, 'utf8'));
    // The in-cluster config's shape: the ServiceAccount token read from a file on every request.
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        { name: 'c', server: k.server, caData: admin.clusters[0].cluster['certificate-authority-data'] },
      ],
      users: [{ name: 'u', authProvider: { name: 'tokenFile', config: { tokenFile } } }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: NS }],
      currentContext: 'x',
    });
    // The list goes through the admin client and succeeds; the watch request that follows cannot
    // even be built (no token yet): the failure is in starting the watch, after the list.
    const adminKc = new KubeConfig();
    adminKc.loadFromFile(k.kubeconfigPath);
    const custom = adminKc.makeApiClient(CustomObjectsApi);
    let restarts = 0;
    let changes = 0;
    watch = new ResilientWatch(kc, {
      resource: 'channels',
      path: `/apis/${GROUP}/${VERSION}/namespaces/${NS}/channels`,
      list: () =>
        custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: NS,
          plural: 'channels',
        }) as never,
      onChange: () => changes++,
      onRestart: () => restarts++,
      backoff: { initialMs: 100, maxMs: 400 },
    });
    await watch.start(); // resolves although nothing could be read
    expect(watch.synced).toBe(false);
    await new Promise((r) => setTimeout(r, 1500));
    expect(watch.synced).toBe(false);

    const minted = await k.kubectl(['-n', NS, 'create', 'token', 'kr-kuberelay-operator']);
    expect(minted.code, minted.stderr).toBe(0);
    await writeFile(`${tokenFile}.tmp`, minted.stdout.trim());
    await rename(`${tokenFile}.tmp`, tokenFile);
    await until('the watch syncs', async () => watch!.synced, 10_000);
    expect(restarts).toBeGreaterThanOrEqual(1);

    const before = changes;
    const applied = await k.kubectl(['-n', NS, 'apply', '-f', '-'], {
      input: `apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: seen }
spec:
  provider: openai
  baseURL: https://api.openai.com/v1
  apiKeySecretRef: { name: creds }
  models: [{ name: m }]
`,
    });
    expect(applied.code, applied.stderr).toBe(0);
    await until('the new Channel is in the cache', async () =>
      watch!.list().some((c) => c.metadata?.name === 'seen'),
    );
    expect(changes).toBeGreaterThan(before);
    expect(rejections).toEqual([]);
  });
});
