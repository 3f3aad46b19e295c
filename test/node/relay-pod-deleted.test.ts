// Deleting a relay pod while it streams a completion (what a rollout, a drain or `kubectl delete`
// does): the pod drains for relay.shutdownTimeoutSeconds, then ends the stream with an error
// event. The client must never see a `[DONE]` for a stream that did not finish.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHART,
  deployMockUpstreams,
  eventually,
  localImageValues,
  nodeCluster,
  pods,
  restartedContainers,
} from './node-env.ts';

const c = nodeCluster();
const ns = 'kuberelay-drain';
const release = 'drain';
let url = '';

beforeAll(async () => {
  await c.k(['create', 'namespace', ns]);
  // No auth and no volume: the shortest install that streams (embedded database on an emptyDir).
  await c.h([
    'install',
    release,
    CHART,
    '-n',
    ns,
    ...localImageValues(c.env),
    '--set',
    'relay.auth=none',
    '--set',
    'database.embedded.persistence.enabled=false',
    '--set',
    'operator.replicas=1',
    '--wait',
    '--timeout=8m',
  ]);
  // One word a second: a 120-token completion streams for two minutes, past the drain deadline.
  await deployMockUpstreams(c, ns, [9301], ['--chunk-delay-ms', '1000']);
  await c.k(
    ['-n', ns, 'apply', '-f', '-'],
    `apiVersion: v1
kind: Secret
metadata: { name: mock-provider }
stringData: { apiKey: mock-key }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: slow }
spec:
  provider: openai-compatible
  baseURL: http://mock-upstream:9301/v1
  apiKeySecretRef: { name: mock-provider }
  models: [{ name: gpt-4o-mini }]
`,
  );
  const ip = (
    await c.k(['-n', ns, 'get', 'svc', `${release}-kuberelay-relay`, '-o', 'jsonpath={.spec.clusterIP}'])
  ).trim();
  url = `http://${ip}/v1/chat/completions`;
  await eventually('the Channel served', 120_000, async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        max_tokens: 1,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    // Which process answered, when it is not the relay's 200 (a body-less 404 was seen once in CI).
    const who = ['server', 'x-request-id', 'x-kuberelay-channel', 'content-type', 'content-length']
      .map((h) => `${h}=${res.headers.get(h) ?? '-'}`)
      .join(' ');
    if (res.status !== 200) throw new Error(`${res.status} ${await res.text()} (${who})`);
    return true;
  });
});
afterAll(async () => {
  await c.helm(['uninstall', release, '-n', ns, '--wait', '--timeout=2m'], { timeoutMs: 150_000 });
  await c.kubectl(['delete', 'namespace', ns, '--timeout=2m'], { timeoutMs: 150_000 });
});

describe('a relay pod deleted mid-stream', () => {
  it('ends the stream with an error event, never a [DONE]', async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        stream: true,
        max_tokens: 120,
        messages: [{ role: 'user', content: 'a long answer please' }],
      }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    // Some content first, so the pod is deleted with the stream in flight.
    while (!text.includes('"content"')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const [pod] = await pods(c, ns, 'app.kubernetes.io/component=relay');
    const deleted = Date.now();
    await c.k(['-n', ns, 'delete', 'pod', pod!.metadata.name, '--wait=false']);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
    } catch (err) {
      text += `\n[connection error: ${(err as Error).message}]`;
    }
    console.log(
      `[node] stream ended ${Math.round((Date.now() - deleted) / 1000)} s after the pod was deleted`,
    );
    expect(text).not.toContain('[DONE]');
    expect(text).toContain('relay_shutting_down');
    // The Deployment replaced the pod; the new one serves.
    await c.k(
      ['-n', ns, 'rollout', 'status', `deploy/${release}-kuberelay-relay`, '--timeout=180s'],
      undefined,
      200_000,
    );
    expect(await restartedContainers(c, ns)).toEqual([]);
  });
});
