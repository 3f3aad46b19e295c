// What a user does on a real cluster: `helm install` the chart with its default values, from
// the image the repository's Dockerfile builds, then apply the quickstart example and call the
// relay with the official openai SDK through its Service (ClusterIP, via kube-proxy).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHART,
  deployMockUpstreams,
  eventually,
  hostPathVolume,
  localImageValues,
  nodeCluster,
  pods,
  REPO,
  restartedContainers,
} from './node-env.ts';

const c = nodeCluster();
const ns = 'kuberelay';

interface ChannelJson {
  metadata: { name: string };
  status?: { health?: string; conditions?: { type: string; status: string; reason?: string }[] };
}

describe('helm install with default values', () => {
  let relayUrl = '';
  let apiKey = '';

  beforeAll(async () => {
    await c.k(['create', 'namespace', ns]);
    await hostPathVolume(c, ns, 'kuberelay-data');
  });
  afterAll(async () => {
    await c.helm(['uninstall', 'kuberelay', '-n', ns, '--wait', '--timeout=2m'], { timeoutMs: 150_000 });
    await c.kubectl(['delete', 'namespace', ns, '--timeout=2m'], { timeoutMs: 150_000 });
    await c.kubectl(['delete', 'pv', `${ns}-kuberelay-data`]);
  });

  it('installs: every pod Ready, helm test passes', async () => {
    const started = Date.now();
    await c.h([
      'install',
      'kuberelay',
      CHART,
      '-n',
      ns,
      ...localImageValues(c.env),
      '--wait',
      '--timeout=8m',
    ]);
    console.log(`[node] helm install --wait: ${Math.round((Date.now() - started) / 1000)} s`);
    await c.k(
      ['-n', ns, 'wait', '--for=condition=Ready', 'pods', '--all', '--timeout=120s'],
      undefined,
      150_000,
    );
    expect(await pods(c, ns, 'app.kubernetes.io/component=operator')).toHaveLength(2);
    expect(await pods(c, ns, 'app.kubernetes.io/component=relay')).toHaveLength(1);
    const test = await c.h(['test', 'kuberelay', '-n', ns, '--timeout=3m']);
    expect(test).toMatch(/Phase:\s+Succeeded/);
  });

  it('serves the quickstart example: the openai SDK gets completions through the relay Service', async () => {
    await deployMockUpstreams(c, ns, [9101, 9102, 9103]);
    // The example's channels point at mock upstreams on the relay's own machine; in a cluster
    // they are the mock-upstream Service.
    const example = (await readFile(join(REPO, 'examples/quickstart.yaml'), 'utf8')).replace(
      /http:\/\/127\.0\.0\.1:(\d+)\/v1/g,
      'http://mock-upstream:$1/v1',
    );
    expect(example).toContain('http://mock-upstream:9101/v1');
    await c.k(['-n', ns, 'apply', '-f', '-'], example);

    const created = await c.k(
      [
        '-n',
        ns,
        'exec',
        'deploy/kuberelay-relay',
        '--',
        'kuberelay',
        'keys',
        'create',
        '--name',
        'node-tier',
        '--json',
      ],
      undefined,
      60_000,
    );
    apiKey = (JSON.parse(created.slice(created.indexOf('{'))) as { secret: string }).secret;
    expect(apiKey).not.toBe('');
    const ip = (
      await c.k(['-n', ns, 'get', 'svc', 'kuberelay-relay', '-o', 'jsonpath={.spec.clusterIP}'])
    ).trim();
    relayUrl = `http://${ip}/v1`;
    const client = new OpenAI({ baseURL: relayUrl, apiKey, maxRetries: 0, timeout: 20_000 });

    // The operator renders the Channels into the config Secret; the relay picks it up.
    const completion = await eventually('a completion through the relay Service', 120_000, async () =>
      client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hello' }],
      }),
    );
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message.content).toBeTruthy();

    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
  });

  // Relays report to the operator through Redis, which the default values leave out: the
  // Channels are Accepted, and Programmed stays Unknown (NoRelays). chart-fleet.test.ts installs
  // the bundled Redis and sees them Healthy and Programmed.
  it('reports every Channel Accepted (kubectl get ch)', async () => {
    const channels = await eventually('Channels Accepted', 120_000, async () => {
      const list = JSON.parse(await c.k(['-n', ns, 'get', 'ch', '-o', 'json'])) as { items: ChannelJson[] };
      const ok = (ch: ChannelJson) =>
        ch.status?.conditions?.some((x) => x.type === 'Accepted' && x.status === 'True') &&
        ch.status.conditions.some((x) => x.type === 'Programmed' && x.reason === 'NoRelays');
      if (list.items.length === 3 && list.items.every(ok)) return list.items;
      throw new Error(JSON.stringify(list.items.map((ch) => [ch.metadata.name, ch.status])));
    });
    expect(channels.map((ch) => ch.metadata.name).sort()).toEqual(['fallback', 'primary-a', 'primary-b']);
    const table = await c.k(['-n', ns, 'get', 'ch']);
    expect(table).toMatch(/primary-a\s+openai-compatible\s+0\s+3\s+Unknown\s+True/);
  });

  it('deleting the leader operator pod: the other replica takes over and keeps programming the relay', async () => {
    const holder = async () =>
      (
        await c.k(['-n', ns, 'get', 'lease', 'kuberelay-operator', '-o', 'jsonpath={.spec.holderIdentity}'])
      ).trim();
    const before = await holder();
    const operators = (await pods(c, ns, 'app.kubernetes.io/component=operator')).map((p) => p.metadata.name);
    const leader = operators.find((name) => before.startsWith(name));
    expect(leader, `lease holder ${before} is one of ${operators.join(', ')}`).toBeDefined();
    const killed = Date.now();
    // Force-deleted: the API object goes at once and the kubelet stops the container (SIGTERM, no
    // grace). Measured here ~3 s, well under the 15 s lease: the leader releases it on the way out.
    await c.k(['-n', ns, 'delete', 'pod', leader!, '--grace-period=0', '--force']);
    const next = await eventually('another operator holding the Lease', 60_000, async () => {
      const h = await holder();
      return h && !h.startsWith(leader!) ? h : undefined;
    });
    const takeoverMs = Date.now() - killed;
    console.log(
      `[node] leader operator pod deleted: ${next} took over in ${(takeoverMs / 1000).toFixed(1)} s`,
    );
    expect(takeoverMs).toBeLessThan(40_000);
    // The new leader writes config changes: a new Channel is served.
    await c.k(
      ['-n', ns, 'apply', '-f', '-'],
      `apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: after-takeover }
spec:
  provider: openai-compatible
  baseURL: http://mock-upstream:9101/v1
  apiKeySecretRef: { name: mock-provider }
  models: [{ name: takeover-model }]
`,
    );
    const client = new OpenAI({ baseURL: relayUrl, apiKey, maxRetries: 0, timeout: 20_000 });
    const completion = await eventually('the new Channel served', 60_000, async () =>
      client.chat.completions.create({
        model: 'takeover-model',
        messages: [{ role: 'user', content: 'hi' }],
      }),
    );
    expect(completion.object).toBe('chat.completion');
    await c.k(
      ['-n', ns, 'rollout', 'status', 'deploy/kuberelay-operator', '--timeout=180s'],
      undefined,
      200_000,
    );
  });

  it('no container restarted or was OOM-killed', async () => {
    expect(await restartedContainers(c, ns)).toEqual([]);
  });
});
