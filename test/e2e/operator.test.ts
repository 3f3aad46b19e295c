import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { type ClusterClient, connect } from '../cluster/control-plane.ts';
import { type ChartInstall, installChart, until } from '../helpers/chart-procs.ts';
import type { Proc } from '../helpers/process.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

/**
 * The operator against a real API server: `kubectl apply -f examples/` -> config Secret ->
 * relays started with --config-secret serve the openai SDK through mock upstreams. The operator
 * and the relays run with exactly the args and environment the chart renders (with a Redis URL,
 * as a user who runs more than one relay sets it) and kubeconfigs of ServiceAccounts bound to
 * the chart's Roles.
 */

const NS = 'kr-e2e';
const SECRET = 'kuberelay-relay-config';
const QUICKSTART = fileURLToPath(new URL('../../examples/quickstart.yaml', import.meta.url));
// examples/quickstart.yaml points its channels at these ports; the test's mocks listen on free
// ports and the applied copy points there instead.
const QUICKSTART_PORTS = { 'primary-a': 9101, 'primary-b': 9102, fallback: 9103 } as const;

describe('operator end to end', () => {
  let k: ClusterClient;
  let dir: string;
  let install: ChartInstall;
  let quickstart: string;
  const mocks: MockUpstream[] = [];
  const operators: Proc[] = [];
  const relays: { proc: Proc; url: string }[] = [];
  let redis: TestRedis;

  const kubectl = async (args: string[], input?: string) => {
    const r = await k.kubectl(['-n', NS, ...args], input === undefined ? {} : { input });
    return r;
  };
  const must = async (args: string[], input?: string) => {
    const r = await kubectl(args, input);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const getJson = async (what: string) => JSON.parse(await must(['get', what, '-o', 'json']));
  const condition = async (what: string, type: string) =>
    ((await getJson(what)).status?.conditions ?? []).find((c: { type: string }) => c.type === type);

  const startOperatorProc = async () => {
    const op = await install.startOperator();
    operators.push(op.proc);
    return { proc: op.proc, metrics: op.metricsUrl };
  };
  const startRelayProc = async () => {
    const relay = await install.startRelay();
    relays.push(relay);
    return relay;
  };
  const chatVia = (url: string, model = 'gpt-4o-mini') =>
    new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 }).chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'hello operator' }],
    });

  beforeAll(async () => {
    k = connect(inject('kubeconfig'));
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-e2e-'));
    redis = await startRedis();
    quickstart = await readFile(QUICKSTART, 'utf8');
    for (const [name, port] of Object.entries(QUICKSTART_PORTS)) {
      const apiKey = name === 'fallback' ? 'mock-key-fallback' : 'mock-key-primary';
      const mock = await startMockUpstream({ port: 0, name, apiKey });
      mocks.push(mock);
      quickstart = quickstart.replace(`http://127.0.0.1:${port}/v1`, `${mock.url}/v1`);
    }
    // Values a user sets: a shared Redis (status from the relays' reports), no client keys.
    install = await installChart(k, NS, [`redis.url=${redis.url}`, 'relay.auth=none']);
  });

  afterAll(async () => {
    for (const p of install?.procs ?? []) p.child.kill('SIGKILL');
    await Promise.all(mocks.map((m) => m.close()));
    await redis?.close();
    await k?.kubectl(['delete', 'namespace', NS, '--wait=false']);
  });

  it('kubectl apply -f examples/ -> config Secret -> relays serve the openai SDK', async () => {
    await must(['apply', '-f', '-'], quickstart);
    await startOperatorProc();
    const secret = await until('the config Secret', async () => {
      const r = await kubectl(['get', 'secret', SECRET, '-o', 'json']);
      return r.code === 0 ? JSON.parse(r.stdout) : undefined;
    });
    expect(secret.metadata.annotations['kuberelay.io/config-generation']).toBe('1');
    const config = JSON.parse(Buffer.from(secret.data['config.json'], 'base64').toString());
    expect(config.channels.map((c: { id: string }) => c.id)).toEqual([
      `${NS}/fallback`,
      `${NS}/primary-a`,
      `${NS}/primary-b`,
    ]);

    const a = await startRelayProc();
    const b = await startRelayProc();
    for (const r of [a, b]) {
      await until('relay ready', async () => (await fetch(`${r.url}/readyz`)).ok || undefined);
      const res = await chatVia(r.url);
      expect(res.choices[0]!.message.content).toBeTruthy();
      expect(res.usage?.total_tokens).toBeGreaterThan(0);
    }
  });

  it('writes Accepted and ResolvedRefs and shows them in kubectl get ch', async () => {
    const accepted = await until('Accepted=True', async () => {
      const c = await condition('channel/primary-a', 'Accepted');
      return c?.status === 'True' ? c : undefined;
    });
    expect(accepted).toMatchObject({ reason: 'Accepted', observedGeneration: 1 });
    expect(await condition('channel/primary-a', 'ResolvedRefs')).toMatchObject({ status: 'True' });
    await until(
      'policy Accepted',
      async () => (await condition('rlp/per-client-ip', 'Accepted'))?.status === 'True',
    );
    const table = await must(['get', 'ch']);
    expect(table.split('\n')[0]).toMatch(/NAME\s+PROVIDER\s+PRIORITY\s+WEIGHT\s+HEALTH\s+ACCEPTED\s+AGE/);
    expect(table).toMatch(/primary-a\s+openai-compatible\s+0\s+3\s+\S*\s*True/);
  });

  it("folds the relays' reports into status: Programmed, then CoolingDown with the last error, then Healthy", async () => {
    const programmed = await until('Programmed=True on both relays', async () => {
      const c = await condition('channel/primary-b', 'Programmed');
      return c?.status === 'True' && c.message.includes('all 2') ? c : undefined;
    });
    expect(programmed).toMatchObject({ reason: 'Programmed', message: 'all 2 relays serve generation 1' });
    expect((await getJson('channel/primary-b')).status.relays).toEqual({ ready: 2, total: 2 });

    await must([
      'patch',
      'channel',
      'primary-b',
      '--type',
      'merge',
      '-p',
      // Long enough to be seen through the relays' reports (every 5 s by default).
      '{"spec":{"cooldown":{"failureThreshold":1,"duration":"12s"}}}',
    ]);
    await until('generation 2 programmed', async () => {
      const c = await condition('channel/primary-b', 'Programmed');
      return c?.status === 'True' && c.observedGeneration === 2 ? c : undefined;
    });
    const mockB = mocks.find((m) => m.name === 'primary-b')!;
    mockB.resetStats();
    mockB.setFaults({ status: 503, count: 1 }); // the next request primary-b gets fails
    await until('primary-b took the failure', async () => {
      await chatVia(relays[0]!.url);
      return mockB.stats().requests > 0 || undefined;
    });
    // The relays report every 5 s, each on its own beat: the one that saw the cooldown through
    // Redis may report before the one that took the failure (and knows its error).
    const cooling = await until('CoolingDown with the last error in status', async () => {
      const st = (await getJson('channel/primary-b')).status;
      return st?.health === 'CoolingDown' && st.lastError ? st : undefined;
    });
    expect(cooling.lastError.code).toBe('status_503');
    expect(cooling.cooldownUntil).toBeTruthy();
    expect(await condition('channel/primary-b', 'Healthy')).toMatchObject({
      status: 'False',
      reason: 'CoolingDown',
    });
    expect(await must(['get', 'ch', 'primary-b'])).toMatch(
      /primary-b\s+openai-compatible\s+0\s+1\s+CoolingDown\s+True/,
    );

    // Traffic goes on; once the cooldown has run out, primary-b serves again and is Healthy.
    let seen: unknown;
    let i = 0;
    const healthy = await until(
      'Healthy again',
      async () => {
        await chatVia(relays[i++ % 2]!.url);
        const st = (await getJson('channel/primary-b')).status;
        seen = st;
        return st?.health === 'Healthy' ? st : undefined;
      },
      45_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(seen)}`);
    });
    expect(healthy.cooldownUntil).toBeUndefined();
    await until('primary-b serves again', async () => {
      await chatVia(relays[0]!.url);
      return mockB.stats().requests > 1 || undefined;
    });
    expect(await must(['get', 'ch', 'primary-b'])).toMatch(
      /primary-b\s+openai-compatible\s+0\s+1\s+Healthy\s+True/,
    );
  });

  it('refuses invalid resources at the API server with a useful message', async () => {
    const r = await kubectl(
      ['apply', '-f', '-'],
      `apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: broken }
spec:
  provider: openai
  baseURL: https://api.openai.com/v1
  apiKeySecretRef: { name: mock-provider }
  weight: 0
  models: [{ name: gpt-4o-mini }]
`,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('weight must be greater than 0 unless the channel is suspended');
  });

  it('leaves out what fails cross-checks with Accepted=False and a reason, and keeps serving the rest', async () => {
    await must(
      ['apply', '-f', '-'],
      `apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: orphan }
spec:
  provider: openai
  baseURL: https://api.openai.com/v1
  apiKeySecretRef: { name: does-not-exist }
  models: [{ name: orphan-model }]
---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: stray }
spec:
  match: { channels: [nope] }
  limits: [{ requests: 5, per: 1m }]
`,
    );
    const refs = await until('ResolvedRefs=False', async () => {
      const c = await condition('channel/orphan', 'ResolvedRefs');
      return c?.status === 'False' ? c : undefined;
    });
    expect(refs).toMatchObject({ reason: 'SecretNotFound' });
    expect(refs.message).toContain(`Secret ${NS}/does-not-exist not found`);
    expect(await condition('channel/orphan', 'Accepted')).toMatchObject({
      status: 'False',
      reason: 'UnresolvedRefs',
    });
    const stray = await until('policy refused', async () => {
      const c = await condition('rlp/stray', 'ResolvedRefs');
      return c?.status === 'False' ? c : undefined;
    });
    expect(stray).toMatchObject({ reason: 'ChannelNotFound' });
    for (const r of relays) expect((await chatVia(r.url)).choices).toHaveLength(1);
    await expect(chatVia(relays[0]!.url, 'orphan-model')).rejects.toMatchObject({ status: 404 });
  });

  it('follows edits, Secret rotation and deletion on every relay (apply -> serving, measured)', async () => {
    // The bound covers a Secret rotation: the operator re-reads referenced Secrets by GET every
    // 10 s (it may not watch them), then the relays load the new config.
    // Polled at a pace that leaves the quickstart's per-client-IP policy (180 requests per 3 m)
    // room for the later steps; a failed step names the last answer it saw.
    const servesEverywhere = async (model: string, want: boolean) => {
      const t0 = performance.now();
      await until(
        `${model} ${want ? 'served' : 'gone'} on all relays`,
        async () => {
          for (const r of relays) {
            if (want) await chatVia(r.url, model);
            else await expect(chatVia(r.url, model)).rejects.toMatchObject({ status: 404 });
          }
          return true;
        },
        45_000,
        400,
      );
      return performance.now() - t0;
    };

    // Edit: add a model to a channel.
    const yaml = quickstart.replace('    - name: dall-e-3', '    - name: gpt-4o\n    - name: dall-e-3');
    const edited = join(dir, 'edited.yaml');
    await writeFile(edited, yaml);
    const t0 = performance.now();
    await must(['apply', '-f', edited]);
    const applied = performance.now();
    await servesEverywhere('gpt-4o', true);
    console.log(
      `[e2e] edit: kubectl apply took ${Math.round(applied - t0)} ms; ` +
        `accepted by the API server -> every relay serving it: ${Math.round(performance.now() - applied)} ms`,
    );

    // Rotate: a channel whose key is wrong until the Secret is fixed.
    const rotated = await startMockUpstream({ name: 'rotated', apiKey: 'rotated-key-2' });
    mocks.push(rotated);
    await must(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Secret
metadata: { name: rotating }
stringData: { apiKey: old-key-1 }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: rotating }
spec:
  provider: openai-compatible
  baseURL: ${rotated.url}/v1
  apiKeySecretRef: { name: rotating }
  models: [{ name: rotating-model }]
`,
    );
    await until('rotating channel loaded', async () => {
      const res = await fetch(`${relays[0]!.url}/v1/models`);
      const body = (await res.json()) as { data: { id: string }[] };
      return body.data.some((m) => m.id === 'rotating-model') || undefined;
    });
    await expect(chatVia(relays[0]!.url, 'rotating-model')).rejects.toMatchObject({ status: 502 });
    // Traffic with the wrong key cools the channel down fleet-wide (defaults: 5 failures, 60 s);
    // fixing the key must not wait that cooldown out.
    for (let i = 0; i < 4; i++) await chatVia(relays[0]!.url, 'rotating-model').catch(() => {});
    await until('the rotating channel cooling down on the other relay', () =>
      chatVia(relays[1]!.url, 'rotating-model').then(
        () => undefined,
        (err: { status?: number }) => err.status === 503 || undefined,
      ),
    );
    const t1 = performance.now();
    await must(['patch', 'secret', 'rotating', '-p', '{"stringData":{"apiKey":"rotated-key-2"}}']);
    await servesEverywhere('rotating-model', true);
    console.log(
      `[e2e] Secret rotation -> every relay using the new key: ${Math.round(performance.now() - t1)} ms`,
    );

    // Delete.
    const t2 = performance.now();
    await must(['delete', 'channel', 'rotating']);
    await servesEverywhere('rotating-model', false);
    console.log(`[e2e] delete -> every relay stopped serving: ${Math.round(performance.now() - t2)} ms`);
  });

  it('two operators: one leader writes; kill -9 it and the other takes over', async () => {
    const first = operators[0]!;
    const second = await startOperatorProc();
    const leaderOf = async (metricsUrl: string) =>
      /^kuberelay_operator_leader 1$/m.test(await (await fetch(metricsUrl)).text());
    expect(await leaderOf(second.metrics)).toBe(false);
    const lease = JSON.parse(await must(['get', 'lease', 'kuberelay-operator', '-o', 'json']));
    expect(first.output()).toContain(lease.spec.holderIdentity);

    first.child.kill('SIGKILL');
    await first.exited();
    const t0 = performance.now();
    await until(
      'the second operator leads',
      () => leaderOf(second.metrics).then((v) => v || undefined),
      30_000,
    );
    console.log(`[e2e] leader killed -> successor leading: ${Math.round(performance.now() - t0)} ms`);

    // Config keeps flowing under the new leader.
    await must([
      'patch',
      'channel',
      'primary-b',
      '--type',
      'merge',
      '-p',
      '{"spec":{"models":[{"name":"gpt-4o-mini"},{"name":"after-failover"}]}}',
    ]);
    // Takeover after kill -9 waits out the lease (15 s) plus a retry period, then the edit.
    await until(
      'the new leader programs the edit',
      async () => {
        await chatVia(relays[0]!.url, 'after-failover');
        return true;
      },
      60_000,
    );
  });

  it('RBAC: the relay may read only its config Secret; the operator cannot read Secrets elsewhere', async () => {
    const asRelay = await k.kubectl(['-n', NS, 'get', 'secret', 'mock-provider'], {
      kubeconfig: install.relayKubeconfig,
    });
    expect(asRelay.code).not.toBe(0);
    expect(asRelay.stderr).toMatch(/forbidden/i);
    const own = await k.kubectl(['-n', NS, 'get', 'secret', SECRET], { kubeconfig: install.relayKubeconfig });
    expect(own.code, own.stderr).toBe(0);
    const elsewhere = await k.kubectl(['-n', 'default', 'get', 'secrets'], {
      kubeconfig: install.operatorKubeconfig,
    });
    expect(elsewhere.code).not.toBe(0);
    expect(elsewhere.stderr).toMatch(/forbidden/i);
  });

  it('a volcengine Channel: both keys of its Secret reach the config; a missing one is named, no value anywhere', async () => {
    const sk = 'c2VjcmV0LWFjY2Vzcy1rZXktZTJl';
    await must(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Secret
metadata: { name: volc-keys }
stringData: { accessKeyId: AKLTe2e, secretAccessKey: "${sk}" }
---
apiVersion: v1
kind: Secret
metadata: { name: volc-half }
stringData: { accessKeyId: AKLThalf }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: jimeng }
spec:
  provider: volcengine
  baseURL: https://visual.volcengineapi.com
  apiKeySecretRef: { name: volc-keys }
  models: [{ name: jimeng-video, upstreamName: jimeng_vgfm_t2v_l20 }]
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: jimeng-half }
spec:
  provider: volcengine
  baseURL: https://visual.volcengineapi.com
  apiKeySecretRef: { name: volc-half }
  models: [{ name: jimeng-half-video, upstreamName: jimeng_vgfm_t2v_l20 }]
`,
    );
    const channel = await until('the volcengine channel in the config', async () => {
      const secret = JSON.parse(await must(['get', 'secret', SECRET, '-o', 'json']));
      const config = JSON.parse(Buffer.from(secret.data['config.json'], 'base64').toString());
      return config.channels.find((c: { id: string }) => c.id === `${NS}/jimeng`);
    });
    expect(channel.credentials).toEqual({ accessKeyId: 'AKLTe2e', secretAccessKey: sk });
    const refs = await until('ResolvedRefs=False', async () => {
      const c = await condition('channel/jimeng-half', 'ResolvedRefs');
      return c?.status === 'False' ? c : undefined;
    });
    expect(refs).toMatchObject({ reason: 'SecretKeyNotFound' });
    expect(refs.message).toContain(`Secret ${NS}/volc-half has no key "secretAccessKey"`);
    expect(await condition('channel/jimeng', 'ResolvedRefs')).toMatchObject({ status: 'True' });
    const statuses = JSON.stringify([
      (await getJson('channel/jimeng')).status,
      (await getJson('channel/jimeng-half')).status,
    ]);
    expect(statuses).not.toContain(sk);
    expect(statuses).not.toContain('AKLThalf');
  });
});
