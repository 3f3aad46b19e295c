import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { type ClusterClient, connect } from '../cluster/control-plane.ts';
import { type ChartInstall, installChart, type RelayProc, until } from '../helpers/chart-procs.ts';

/**
 * Level-triggered, including its own output; least privilege; tenancy. The operator and relay
 * run with exactly the chart's environment (defaults, plus watchNamespaces for the tenancy case)
 * and ServiceAccounts bound to the chart's Roles.
 */

const NS = 'kr-converge';
const TEAM_A = 'kr-team-a';
const TEAM_B = 'kr-team-b';
const SECRET = 'kuberelay-relay-config';

const channelYaml = (name: string, baseURL: string, models: string[], secret = 'creds') => `apiVersion: v1
kind: Secret
metadata: { name: ${secret} }
stringData: { apiKey: mock-key }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: ${name} }
spec:
  provider: openai-compatible
  baseURL: ${baseURL}/v1
  apiKeySecretRef: { name: ${secret} }
  models: [${models.map((m) => `{ name: ${m} }`).join(', ')}]
`;

describe('operator converges, as installed by default', () => {
  let k: ClusterClient;
  let install: ChartInstall;
  let mock: MockUpstream;
  let relay: RelayProc;

  const kubectl = (ns: string, args: string[], input?: string) =>
    k.kubectl(['-n', ns, ...args], input === undefined ? {} : { input });
  const must = async (ns: string, args: string[], input?: string) => {
    const r = await kubectl(ns, args, input);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const configSecret = async () => {
    const r = await kubectl(NS, ['get', 'secret', SECRET, '-o', 'json']);
    return r.code === 0
      ? (JSON.parse(r.stdout) as {
          metadata: { annotations: Record<string, string>; resourceVersion: string };
          data: Record<string, string>;
        })
      : undefined;
  };
  const generation = (s: { metadata: { annotations: Record<string, string> } }) =>
    Number(s.metadata.annotations['kuberelay.io/config-generation']);
  const condition = async (ns: string, what: string, type: string) => {
    const r = await kubectl(ns, ['get', what, '-o', 'json']);
    if (r.code !== 0) return undefined;
    return (
      (JSON.parse(r.stdout).status?.conditions ?? []) as {
        type: string;
        status: string;
        reason: string;
        message: string;
      }[]
    ).find((c) => c.type === type);
  };
  const chat = (model: string) =>
    new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: 'unused', maxRetries: 0 }).chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'hi' }],
    });

  beforeAll(async () => {
    k = connect(inject('kubeconfig'));
    mock = await startMockUpstream({ port: 0, name: 'converge', apiKey: 'mock-key' });
    // Two extra watched namespaces: how a user gives teams their own namespaces.
    install = await installChart(
      k,
      NS,
      [`operator.watchNamespaces={${NS},${TEAM_A},${TEAM_B}}`, 'relay.auth=none'],
      [TEAM_A, TEAM_B],
    );
    await must(NS, ['apply', '-f', '-'], channelYaml('primary', mock.url, ['gpt-4o-mini']));
    await install.startOperator();
    await until('the config Secret', configSecret, 30_000);
    relay = await install.startRelay();
    await until('the relay serves', async () => (await chat('gpt-4o-mini')).choices.length === 1, 30_000);
  });

  afterAll(async () => {
    for (const p of install?.procs ?? []) p.child.kill('SIGKILL');
    await mock?.close();
  });

  it('a deleted config Secret is written again, with a newer generation', async () => {
    const before = (await configSecret())!;
    await must(NS, ['delete', 'secret', SECRET]);
    const t0 = Date.now();
    const back = await until('the config Secret is back', configSecret, 20_000);
    console.log(`[e2e] config Secret deleted -> rewritten after ${Date.now() - t0} ms`);
    expect(generation(back)).toBeGreaterThan(generation(before));
    expect(back.data['config.json']).toBeTruthy();
    // The relay follows the rewritten Secret (never an older generation) and keeps serving.
    expect((await chat('gpt-4o-mini')).choices).toHaveLength(1);
  });

  it('a hand-edited config Secret is put back to the render', async () => {
    const before = (await configSecret())!;
    const bogus = Buffer.from(
      JSON.stringify({ generation: 999, hash: 'x', channels: [], policies: [] }),
    ).toString('base64');
    await must(NS, [
      'patch',
      'secret',
      SECRET,
      '--type',
      'merge',
      '-p',
      JSON.stringify({ data: { 'config.json': bogus } }),
    ]);
    const fixed = await until(
      'the render is back',
      async () => {
        const s = await configSecret();
        return s && s.data['config.json'] !== bogus ? s : undefined;
      },
      20_000,
    );
    const config = JSON.parse(Buffer.from(fixed.data['config.json']!, 'base64').toString());
    expect(config.channels.map((c: { id: string }) => c.id)).toEqual([`${NS}/primary`]);
    expect(config.hash).toBe(before.metadata.annotations['kuberelay.io/config-hash']);
    expect(generation(fixed)).toBeGreaterThan(generation(before));
  });

  it('RBAC: the operator may get a Secret by name, but never list or watch Secrets', async () => {
    for (const ns of [NS, TEAM_A, TEAM_B]) {
      for (const [verb, want] of [
        ['get', 'yes'],
        ['list', 'no'],
        ['watch', 'no'],
      ] as const) {
        const r = await k.kubectl(['auth', 'can-i', verb, 'secrets', '-n', ns], {
          kubeconfig: install.operatorKubeconfig,
        });
        expect(r.stdout.trim(), `${verb} secrets in ${ns}`).toBe(want);
      }
    }
    // ...and with that it still resolves references, including a Secret created after its Channel.
    await must(
      TEAM_A,
      ['apply', '-f', '-'],
      channelYaml('late', mock.url, ['late-model'], 'late-creds').split('---\n')[1]!,
    );
    await until(
      'SecretNotFound',
      async () => (await condition(TEAM_A, 'channel/late', 'ResolvedRefs'))?.reason === 'SecretNotFound',
    );
    await must(
      TEAM_A,
      ['apply', '-f', '-'],
      channelYaml('late', mock.url, ['late-model'], 'late-creds').split('---\n')[0]!,
    );
    const t0 = Date.now();
    await until(
      'Accepted once the Secret exists',
      async () => (await condition(TEAM_A, 'channel/late', 'Accepted'))?.status === 'True',
    );
    console.log(`[e2e] Secret created after its Channel -> Accepted after ${Date.now() - t0} ms`);
    await until('the relay serves late-model', async () => (await chat('late-model')).choices.length === 1);
  });

  it('ModelConflict: a newer Channel of another namespace cannot take a model name', async () => {
    await must(TEAM_A, ['apply', '-f', '-'], channelYaml('team-a-gpt', mock.url, ['shared-model']));
    await until(
      'team-a Accepted',
      async () => (await condition(TEAM_A, 'channel/team-a-gpt', 'Accepted'))?.status === 'True',
    );
    await must(TEAM_B, ['apply', '-f', '-'], channelYaml('team-b-gpt', mock.url, ['shared-model', 'b-only']));
    const refused = await until('team-b refused', async () => {
      const c = await condition(TEAM_B, 'channel/team-b-gpt', 'Accepted');
      return c?.status === 'False' ? c : undefined;
    });
    expect(refused.reason).toBe('ModelConflict');
    expect(refused.message).toContain(`Channel ${TEAM_A}/team-a-gpt`);
    expect((await condition(TEAM_A, 'channel/team-a-gpt', 'Accepted'))?.status).toBe('True');
    // The relay sends shared-model to team-a's channel only, and does not serve team-b's at all.
    await expect(chat('b-only')).rejects.toMatchObject({ status: 404 });
    // ... and `kubectl describe` says why, as an Event on team-b's Channel.
    const described = await until('the ModelConflict Event in kubectl describe', async () => {
      const out = await must(TEAM_B, ['describe', 'channel', 'team-b-gpt']);
      return /Warning\s+ModelConflict\s/.test(out) ? out : undefined;
    });
    expect(described).toMatch(
      new RegExp(
        `Warning\\s+ModelConflict\\s+.*kuberelay-operator\\s+refused: .*Channel ${TEAM_A}/team-a-gpt`,
      ),
    );
  });
});
