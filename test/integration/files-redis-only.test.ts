import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { type RunningRelay, startRelay } from '../../relay/main.ts';
import { configYaml, startMocks } from '../helpers/harness.ts';
import { startRedis, type TestRedis, testPrefix } from '../helpers/redis.ts';

// REDIS_URL without a database (client auth off, no DATABASE_URL): Redis alone holds the pins and
// each key's list, so two relays still agree where a file lives.

let redis: TestRedis;
let mocks: MockUpstream[];
let dir: string;
const relays: RunningRelay[] = [];

beforeAll(async () => {
  [redis, mocks] = await Promise.all([startRedis(), startMocks(['a', 'b'])]);
  dir = await mkdtemp(join(tmpdir(), 'kuberelay-pins-redis-'));
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    configYaml(['a', 'b'].map((name, i) => ({ name, mock: mocks[i], provider: 'openai' }))),
  );
  const prefix = testPrefix('pins');
  for (const pod of ['p0', 'p1']) {
    relays.push(
      await startRelay({
        configFile: file,
        port: 0,
        host: '127.0.0.1',
        auth: 'none',
        logLevel: 'silent',
        shutdownTimeoutMs: 2000,
        shared: { redisUrl: redis.url, prefix, pod },
      }),
    );
  }
});
afterAll(async () => {
  await Promise.all(relays.map((r) => r.shutdown()));
  await Promise.all([
    redis?.close(),
    ...(mocks ?? []).map((m) => m.close()),
    dir && rm(dir, { recursive: true, force: true }),
  ]);
});

it('a file uploaded through one relay is found, listed and deleted through the other', async () => {
  const [a, b] = relays.map((r) => new OpenAI({ baseURL: `${r.url}/v1`, apiKey: 'unused', maxRetries: 0 }));
  const file = await a!.files.create({
    file: await toFile(Buffer.from('pinned in redis'), 'r.txt'),
    purpose: 'user_data',
  });
  const holder = (await a!.files.retrieve(file.id).withResponse()).response.headers.get(
    'x-kuberelay-channel',
  );
  for (let i = 0; i < 4; i++) {
    expect(
      (await b!.files.retrieve(file.id).withResponse()).response.headers.get('x-kuberelay-channel'),
    ).toBe(holder);
  }
  expect((await b!.files.list()).data.map((f) => f.id)).toEqual([file.id]);
  await b!.files.delete(file.id);
  expect(await a!.files.retrieve(file.id).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
  expect((await a!.files.list()).data).toEqual([]);
});
