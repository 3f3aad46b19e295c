import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { type Fleet, startFleet } from '../helpers/fleet.ts';
import { chat, metric, post } from '../helpers/harness.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

// A user creates a Channel with a wrong key, traffic fails (401) and the channel cools down
// fleet-wide; then they fix the Secret. The fixed channel must serve at once on every pod, not
// after a cooldown that the old key earned. An edit that leaves the key alone keeps the cooldown.

const NEW_KEY = 'sk-rotated-key-2';

function config(key: string, weight = 1) {
  return `apiVersion: v1
kind: Secret
metadata: { name: rotating }
stringData: { apiKey: ${key} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: rotating }
spec:
  provider: openai-compatible
  baseURL: ${upstream.url}/v1
  apiKeySecretRef: { name: rotating }
  weight: ${weight}
  models: [{ name: rotating-model }]
  cooldown: { failureThreshold: 2, duration: 10m }
`;
}

let redis: TestRedis;
let upstream: MockUpstream;
let fleet: Fleet;

beforeAll(async () => {
  redis = await startRedis();
  upstream = await startMockUpstream({ name: 'rotating', apiKey: NEW_KEY });
  fleet = await startFleet(2, config('sk-old-key-1'), { REDIS_URL: redis.url }, 'rot');
});
afterAll(async () => {
  await fleet?.close();
  await upstream?.close();
  await redis?.close();
});

const ask = (url: string) => post(url, '/v1/chat/completions', chat({ model: 'rotating-model' }));
/** Polls until every pod answers `status` (the pods follow the file within a second or so). */
async function everyPodAnswers(status: number, timeoutMs = 15_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let seen: number[] = [];
  while (Date.now() < deadline) {
    seen = [];
    for (const p of fleet.pods) seen.push((await ask(p.url)).status);
    if (seen.every((s) => s === status)) return seen;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pods answered ${seen.join(', ')}, not all ${status}`);
}

describe('a rotated channel key', () => {
  it('clears the cooldown the old key earned, on every pod; other edits keep it', async () => {
    const [a, b] = fleet.pods;
    // The wrong key: the upstream refuses it, the relay answers 502, twice, and the channel cools.
    expect((await ask(a!.url)).status).toBe(502);
    expect((await ask(a!.url)).status).toBe(502);
    const cooled = await everyPodAnswers(503);
    expect(cooled).toEqual([503, 503]);
    const refusedBefore = upstream.stats().requests;

    // Another field changes (weight): the failures were still earned by this key and endpoint.
    await writeFile(fleet.file, config('sk-old-key-1', 2));
    for (const p of fleet.pods) {
      await expect.poll(() => metric(p.url, 'kuberelay_config_generation'), { timeout: 15_000 }).toBe(2);
    }
    expect((await ask(a!.url)).status).toBe(503);
    expect((await ask(b!.url)).status).toBe(503);
    expect(upstream.stats().requests).toBe(refusedBefore);

    // The fixed key serves at once on both pods.
    await writeFile(fleet.file, config(NEW_KEY, 2));
    expect(await everyPodAnswers(200)).toEqual([200, 200]);
  });
});
