import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GROUP, type Kube, loadKube, mergePatch, VERSION } from '../../kube/client.ts';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { type ClusterClient, connect } from '../cluster/control-plane.ts';
import {
  type ChartInstall,
  installChart,
  type OperatorProc,
  type RelayProc,
  until,
} from '../helpers/chart-procs.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

/**
 * Kubernetes Events from the operator, against a real API server, with the operator and a relay
 * run exactly as the chart renders them (its RBAC included): `kubectl describe ch` shows why a
 * Channel was refused and when it entered and left cooldown, and a Channel that flaps 100 times
 * leaves a handful of Events, not hundreds.
 */

const NS = 'kr-events';

interface EventItem {
  type: string;
  reason: string;
  message: string;
  count: number;
  source: { component: string };
  involvedObject: { kind: string; name: string; uid: string };
}

describe('operator Events', () => {
  let k: ClusterClient;
  let admin: Kube;
  let install: ChartInstall;
  let redis: TestRedis;
  let mock: MockUpstream;
  let operator: OperatorProc;
  let relay: RelayProc;

  const kubectl = async (args: string[], input?: string) => {
    const r = await k.kubectl(['-n', NS, ...args], input === undefined ? {} : { input });
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const eventsOf = async (name: string): Promise<EventItem[]> =>
    JSON.parse(
      await kubectl(['get', 'events', '--field-selector', `involvedObject.name=${name}`, '-o', 'json']),
    ).items;
  const channel = async (name: string) =>
    (await admin.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: 'channels',
      name,
    })) as {
      metadata: { generation: number };
      status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
    };
  const metric = async (name: string) => {
    const text = await (await fetch(operator.metricsUrl)).text();
    return Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  };

  beforeAll(async () => {
    k = connect(inject('kubeconfig'));
    admin = loadKube(k.kubeconfigPath);
    redis = await startRedis();
    mock = await startMockUpstream({ port: 0, name: 'events', apiKey: 'events-key' });
    install = await installChart(k, NS, [`redis.url=${redis.url}`, 'relay.auth=none']);
    await kubectl(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Secret
metadata: { name: events-key }
stringData: { apiKey: events-key }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: flaky }
spec:
  provider: openai-compatible
  baseURL: ${mock.url}/v1
  apiKeySecretRef: { name: events-key }
  models: [{ name: flaky-model }]
  cooldown: { failureThreshold: 1, duration: 8s }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: flappy }
spec:
  provider: openai-compatible
  baseURL: ${mock.url}/v1
  apiKeySecretRef: { name: events-key }
  models: [{ name: flappy-model }]
`,
    );
    operator = await install.startOperator();
    relay = await install.startRelay();
    await until('relay ready', async () => (await fetch(`${relay.url}/readyz`)).ok || undefined, 60_000);
  });

  afterAll(async () => {
    for (const p of install?.procs ?? []) p.child.kill('SIGKILL');
    await mock?.close();
    await redis?.close();
    await k?.kubectl(['delete', 'namespace', NS, '--wait=false']);
  });

  it('kubectl describe ch shows Programmed, then entering and leaving cooldown', async () => {
    await until('Programmed Event', async () =>
      (await eventsOf('flaky')).some((e) => e.reason === 'Programmed' && e.type === 'Normal'),
    );
    mock.setFaults({ status: 503, count: 1 });
    const client = new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    await client.chat.completions
      .create({ model: 'flaky-model', messages: [{ role: 'user', content: 'hi' }] })
      .catch(() => undefined);
    // The relay reports every 5 s; the cooldown lasts 8 s.
    const described = await until(
      'CooldownEnded in kubectl describe',
      async () => {
        const out = await kubectl(['describe', 'ch', 'flaky']);
        return /Normal\s+CooldownEnded\s/.test(out) ? out : undefined;
      },
      60_000,
    );
    const events = described.slice(described.indexOf('Events:'));
    expect(events).toMatch(/Type\s+Reason\s+Age\s+From\s+Message/);
    expect(events).toMatch(
      /Warning\s+CoolingDown\s+.*kuberelay-operator.*entered cooldown after status_503: no requests until it ends/,
    );
    expect(events).toMatch(/Normal\s+CooldownEnded\s+.*left cooldown: serving again/);
    expect(events).toMatch(/Normal\s+Programmed\s+.*all 1 relays serve the latest spec/);
    const [e] = (await eventsOf('flaky')).filter((x) => x.reason === 'CoolingDown');
    expect(e!.involvedObject).toMatchObject({ kind: 'Channel', name: 'flaky' });
    expect(e!.source.component).toBe('kuberelay-operator');
  });

  it('a Channel that flaps 100 times (refused, accepted again) leaves a handful of Events, with counts', async () => {
    const writesBefore =
      (await metric('kuberelay_operator_events_total{result="created"}')) +
      (await metric('kuberelay_operator_events_total{result="patched"}'));
    for (let i = 0; i < 200; i++) {
      const refused = i % 2 === 0;
      await admin.custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace: NS,
          plural: 'channels',
          name: 'flappy',
          body: { spec: { apiKeySecretRef: { name: refused ? 'missing-key' : 'events-key' } } },
        },
        mergePatch(),
      );
      // Each flip is seen by the operator (else it could coalesce them): wait for its status.
      await until(`flip ${i} in status`, async () => {
        const ch = await channel('flappy');
        const accepted = ch.status?.conditions?.find((c) => c.type === 'Accepted');
        return ch.status?.observedGeneration === ch.metadata.generation &&
          accepted?.status === (refused ? 'False' : 'True')
          ? true
          : undefined;
      });
    }
    await until('the refusal in kubectl describe', async () =>
      /Warning\s+UnresolvedRefs\s+.*refused: spec.apiKeySecretRef: Secret kr-events\/missing-key not found/.test(
        await kubectl(['describe', 'ch', 'flappy']),
      ),
    );
    const events = await eventsOf('flappy');
    expect(events.length).toBeLessThanOrEqual(4);
    const refusals = events.filter((e) => e.reason === 'UnresolvedRefs');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.type).toBe('Warning');
    expect(refusals[0]!.count).toBeGreaterThan(1);
    expect(events.find((e) => e.reason === 'Accepted')?.count).toBeGreaterThan(1);
    // 200 transitions, each one an Event to record: the spam filter let at most its burst of 25
    // writes through for this object and counted the rest.
    const writes =
      (await metric('kuberelay_operator_events_total{result="created"}')) +
      (await metric('kuberelay_operator_events_total{result="patched"}')) -
      writesBefore;
    expect(writes).toBeLessThanOrEqual(25);
    expect(await metric('kuberelay_operator_events_total{result="dropped_spam"}')).toBeGreaterThanOrEqual(
      200 - 25,
    );
    expect(await metric('kuberelay_operator_events_total{result="error"}')).toBe(0);
  }, 400_000);
});
