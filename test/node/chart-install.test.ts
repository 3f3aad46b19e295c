// What a user does on a real cluster: `helm install` the chart with its default values, from
// the image the repository's Dockerfile builds, then apply the quickstart example and call the
// relay with the official openai SDK through its Service (ClusterIP, via kube-proxy).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LEASE_TIMINGS } from '../../operator/leader.ts';
import {
  CHART,
  containerPid,
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
  status?: {
    health?: string;
    relays?: { ready: number; total: number };
    conditions?: { type: string; status: string; reason?: string; observedGeneration?: number }[];
  };
}

describe('helm install with default values', () => {
  let relayUrl = '';
  let apiKey = '';
  let crashed = '';

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

  // The relays report through the bundled Redis (a default), and the operator folds the reports
  // into each Channel's status.
  it("reports every Channel Accepted, Programmed and Healthy from the pods' reports (kubectl get ch)", async () => {
    const channels = await eventually('Channels Accepted, Programmed and Healthy', 120_000, async () => {
      const list = JSON.parse(await c.k(['-n', ns, 'get', 'ch', '-o', 'json'])) as { items: ChannelJson[] };
      const ok = (ch: ChannelJson) =>
        ['Accepted', 'Programmed', 'Healthy'].every((type) =>
          ch.status?.conditions?.some((x) => x.type === type && x.status === 'True'),
        ) && ch.status?.health === 'Healthy';
      if (list.items.length === 3 && list.items.every(ok)) return list.items;
      throw new Error(JSON.stringify(list.items.map((ch) => [ch.metadata.name, ch.status])));
    });
    expect(channels.map((ch) => ch.metadata.name).sort()).toEqual(['fallback', 'primary-a', 'primary-b']);
    expect(channels.every((ch) => ch.status?.relays?.ready === 1)).toBe(true);
    const table = await c.k(['-n', ns, 'get', 'ch']);
    expect(table).toMatch(/primary-a\s+openai-compatible\s+0\s+3\s+Healthy\s+True/);
  });

  it('the leader operator crashes (SIGKILL): the other takes the Lease within its bound and programs an edit', async () => {
    const lease = async () =>
      JSON.parse(await c.k(['-n', ns, 'get', 'lease', 'kuberelay-operator', '-o', 'json'])) as {
        spec: { holderIdentity?: string; leaseDurationSeconds: number };
      };
    const before = await lease();
    const holder = before.spec.holderIdentity ?? '';
    const operators = await pods(c, ns, 'app.kubernetes.io/component=operator');
    const leader = operators.find((p) => holder.startsWith(p.metadata.name));
    expect(leader, `lease holder ${holder} is one of the operator pods`).toBeDefined();
    crashed = leader!.metadata.name;
    const pid = await containerPid(c, leader!.status.containerStatuses![0]!.containerID!);

    // A real crash: the container's init process (tini, and with it node) killed on the host, so
    // nothing releases the Lease. An edit made at that moment waits for the next leader.
    process.kill(pid, 'SIGKILL');
    const killed = Date.now();
    await c.k(['-n', ns, 'patch', 'ch', 'primary-b', '--type=merge', '-p', '{"spec":{"weight":2}}']);
    const generation = Number(
      await c.k(['-n', ns, 'get', 'ch', 'primary-b', '-o', 'jsonpath={.metadata.generation}']),
    );
    const next = await eventually('another operator holding the Lease', 60_000, async () => {
      const h = (await lease()).spec.holderIdentity;
      return h && !h.startsWith(crashed) ? h : undefined;
    });
    const takeoverMs = Date.now() - killed;
    await eventually(`primary-b generation ${generation} Programmed`, 60_000, async () => {
      const ch = JSON.parse(await c.k(['-n', ns, 'get', 'ch', 'primary-b', '-o', 'json'])) as ChannelJson;
      const p = ch.status?.conditions?.find((x) => x.type === 'Programmed');
      return p?.status === 'True' && p.observedGeneration === generation ? true : undefined;
    });
    const programmedMs = Date.now() - killed;
    console.log(
      `[node] leader operator SIGKILLed: ${next} took the Lease after ${(takeoverMs / 1000).toFixed(1)} s, ` +
        `the edit was programmed after ${(programmedMs / 1000).toFixed(1)} s`,
    );
    // The standby takes a Lease whose record has not changed for leaseDuration of its own time; it
    // sees the last renewal and then acts on its next try, each up to 1.2 retry periods late (plus
    // this test's 0.5 s polling). Sooner than leaseDuration - one try would mean a release, not a crash.
    const leaseMs = before.spec.leaseDurationSeconds * 1000;
    const tryMs = 1.2 * DEFAULT_LEASE_TIMINGS.retryPeriodMs;
    expect(takeoverMs).toBeGreaterThan(leaseMs - tryMs);
    expect(takeoverMs).toBeLessThan(leaseMs + 2 * tryMs + 1500);
    // Then the new leader renders the edit, the relay loads it and reports (every 5 s), and the
    // status is folded (every 2 s).
    expect(programmedMs - takeoverMs).toBeLessThan(10_000);

    // The relay serves the edited config, and the crashed operator comes back (its one restart).
    const client = new OpenAI({ baseURL: relayUrl, apiKey, maxRetries: 0, timeout: 20_000 });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.object).toBe('chat.completion');
    await c.k(
      ['-n', ns, 'rollout', 'status', 'deploy/kuberelay-operator', '--timeout=180s'],
      undefined,
      200_000,
    );
    await c.k(
      ['-n', ns, 'wait', '--for=condition=Ready', 'pod', crashed, '--timeout=120s'],
      undefined,
      150_000,
    );
  });

  it('no container restarted or was OOM-killed, but the operator the test killed (once, by SIGKILL)', async () => {
    expect(await restartedContainers(c, ns)).toEqual(
      crashed ? [`${crashed}/operator: restarts=1 last=Error exit 137`] : [],
    );
  });
});
