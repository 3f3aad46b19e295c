import { writeFile } from 'node:fs/promises';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../core/keys/api-key.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { type Fleet, startFleet } from '../helpers/fleet.ts';
import { configYaml, metric, startMocks } from '../helpers/harness.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import { kuberelay } from '../helpers/process.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

// Pinning across a fleet: three relay processes sharing Redis and PostgreSQL, two channels serving
// the same model at the same priority. A file created through pod A is retrieved, listed, read and
// deleted through pods B and C, always on the channel that holds it; a batch made through B from
// it runs there; Redis restarted empty loses nothing (the database is the record); another key
// sees none of it; and the holding channel removed from the config is a 410 on every pod.

let redis: TestRedis;
let pg: Postgres;
let mocks: MockUpstream[];
let fleet: Fleet;
let env: Record<string, string>;
let owner: CreatedKey;
let stranger: CreatedKey;
let limited: CreatedKey;

const yaml = (names = ['a', 'b']) =>
  configYaml(
    names.map((name, i) => ({
      name,
      mock: mocks[i],
      provider: 'openai',
      models:
        '[{ name: gpt-4o-mini, pricing: { inputPer1M: "1", outputPer1M: "2", batchInputPer1M: "0.5", batchOutputPer1M: "1" } }]',
    })),
  );

async function run(args: string[]) {
  const p = kuberelay(args, env);
  const code = await p.exited();
  return { code, out: p.output() };
}

async function createKey(name: string, ...more: string[]): Promise<CreatedKey> {
  const r = await run(['keys', 'create', '--json', '--name', name, ...more]);
  expect(r.code, r.out).toBe(0);
  return JSON.parse(r.out.slice(r.out.indexOf('{'))) as CreatedKey;
}

const pod = (i: number, key = owner) =>
  new OpenAI({ baseURL: `${fleet.pods[i]!.url}/v1`, apiKey: key.secret, maxRetries: 0 });

beforeAll(async () => {
  [redis, pg, mocks] = await Promise.all([startRedis(), startPostgres(), startMocks(['a', 'b'])]);
  env = { DATABASE_URL: await pg.createDatabase('fleet_pins') };
  const m = await run(['migrate']);
  expect(m.code, m.out).toBe(0);
  expect(m.out).toContain('20261202000000_upstream_objects');
  [owner, stranger] = [await createKey('owner'), await createKey('stranger')];
  limited = await createKey('limited', '--models', 'gpt-4o');
  fleet = await startFleet(3, yaml(), { ...env, REDIS_URL: redis.url, KUBERELAY_AUTH: 'keys' }, 'pins');
}, 120_000);
afterAll(async () => {
  await fleet?.close();
  await Promise.all([redis?.close(), pg?.close(), ...(mocks ?? []).map((m) => m.close())]);
});

/** Requests each mock got for one file id (any of its routes). */
const hits = (m: MockUpstream, id: string) =>
  Object.entries(m.stats().byPath)
    .filter(([p]) => p.includes(id))
    .reduce((n, [, c]) => n + c, 0);

describe('files and batches across three relays sharing Redis and PostgreSQL', () => {
  let fileId: string;
  let holder: number;

  it('a file created through pod A is retrieved, listed and read through pods B and C on its channel only', async () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256));
    const file = await pod(0).files.create({ file: await toFile(bytes, 'shared.bin'), purpose: 'user_data' });
    fileId = file.id;
    const uploads = mocks.map((m) => m.stats().byPath['/v1/files'] ?? 0);
    holder = uploads.findIndex((n) => n > 0);
    const other = 1 - holder;
    const channel = `default/${['a', 'b'][holder]}`;
    for (let round = 0; round < 4; round++) {
      for (const i of [1, 2]) {
        const got = await pod(i).files.retrieve(fileId).withResponse();
        expect(got.data).toMatchObject({ id: fileId, bytes: bytes.length });
        expect(got.response.headers.get('x-kuberelay-channel')).toBe(channel);
      }
    }
    expect((await pod(1).files.list()).data.map((f) => f.id)).toEqual([fileId]);
    const content = await pod(2).files.content(fileId);
    expect(Buffer.from(await content.arrayBuffer()).equals(bytes)).toBe(true);
    expect(hits(mocks[other]!, fileId)).toBe(0);
    expect(hits(mocks[holder]!, fileId)).toBeGreaterThanOrEqual(9);
  });

  it('another key sees none of it', async () => {
    const e = await pod(1, stranger)
      .files.retrieve(fileId)
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.NotFoundError);
    expect((await pod(2, stranger).files.list()).data).toEqual([]);
  });

  it('a key limited to other models may not upload for this one, and has no channel with files', async () => {
    const file = async () => toFile(Buffer.from('x'), 'x.txt');
    const named = await pod(0, limited)
      .files.create(
        { file: await file(), purpose: 'user_data' },
        { headers: { 'x-kuberelay-model': 'gpt-4o-mini' } },
      )
      .catch((err: unknown) => err);
    expect((named as InstanceType<typeof OpenAI.APIError>).status).toBe(403);
    const unnamed = await pod(1, limited)
      .files.create({ file: await file(), purpose: 'user_data' })
      .catch((err: unknown) => err);
    expect((unnamed as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((unnamed as InstanceType<typeof OpenAI.APIError>).code).toBe('files_not_supported');
  });

  it('Redis restarted empty: the database still knows where the file lives', async () => {
    await redis.stop();
    await redis.start();
    const got = await pod(2).files.retrieve(fileId).withResponse();
    expect(got.response.headers.get('x-kuberelay-channel')).toBe(`default/${['a', 'b'][holder]}`);
  });

  it('a batch created through pod B from it runs on the same channel and is charged once across pods', async () => {
    const line = (i: number) =>
      JSON.stringify({
        custom_id: `q${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hi ${i}` }] },
      });
    const input = await pod(0).files.create({
      file: await toFile(Buffer.from([0, 1].map(line).join('\n')), 'in.jsonl'),
      purpose: 'batch',
    });
    const channel = (await pod(0).files.retrieve(input.id).withResponse()).response.headers.get(
      'x-kuberelay-channel',
    );
    const batch = await pod(1).batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const costs = async () =>
      (await Promise.all(fleet.pods.map((p) => metric(p.url, 'kuberelay_cost_usd_total')))).reduce(
        (a, b) => a + b,
        0,
      );
    const before = await costs();
    let done: OpenAI.Batch | undefined;
    await expect
      .poll(
        async () => {
          // Every pod polls it: only one may charge it.
          const all = await Promise.all(
            [0, 1, 2].map((i) => pod(i).batches.retrieve(batch.id).withResponse()),
          );
          for (const r of all) expect(r.response.headers.get('x-kuberelay-channel')).toBe(channel);
          done = all[0]!.data;
          return all.every((r) => r.data.status === 'completed');
        },
        { timeout: 15_000, interval: 100 },
      )
      .toBe(true);
    expect((await pod(2).batches.list()).data.map((b) => b.id)).toContain(batch.id);
    const out = await pod(2).files.content(done!.output_file_id!);
    expect((await out.text()).trim().split('\n')).toHaveLength(2);
    const u = done!.usage!;
    expect((await costs()) - before).toBeCloseTo((u.input_tokens * 0.5 + u.output_tokens) / 1e6, 12);
  });

  it('deleted through pod C, it is gone on pods A and B', async () => {
    expect(await pod(2).files.delete(fileId)).toMatchObject({ id: fileId, deleted: true });
    for (const i of [0, 1]) {
      const e = await pod(i)
        .files.retrieve(fileId)
        .catch((err: unknown) => err);
      expect(e).toBeInstanceOf(OpenAI.NotFoundError);
      expect((await pod(i).files.list()).data.map((f) => f.id)).not.toContain(fileId);
    }
  });

  it('the holding channel removed from the config: 410 on every pod, while the other channel still serves the model', async () => {
    const file = await pod(0).files.create({
      file: await toFile(Buffer.from('pinned'), 'p.txt'),
      purpose: 'user_data',
    });
    const channel = (await pod(0).files.retrieve(file.id).withResponse()).response.headers.get(
      'x-kuberelay-channel',
    )!;
    const keep = ['a', 'b'].filter((n) => `default/${n}` !== channel);
    const kept = mocks[['a', 'b'].indexOf(keep[0]!)]!;
    await writeFile(fleet.file, configYaml([{ name: keep[0]!, mock: kept, provider: 'openai' }]));
    for (const i of [0, 1, 2]) {
      await expect
        .poll(
          async () =>
            (
              await fetch(`${fleet.pods[i]!.url}/v1/files/${file.id}`, {
                headers: { authorization: `Bearer ${owner.secret}` },
              })
            ).status,
          {
            timeout: 10_000,
          },
        )
        .toBe(410);
    }
    const e = await pod(1)
      .files.content(file.id)
      .catch((err: unknown) => err);
    expect((e as InstanceType<typeof OpenAI.APIError>).status).toBe(410);
    expect((e as InstanceType<typeof OpenAI.APIError>).message).toContain(channel);
    expect(hits(kept, file.id)).toBe(0);
    // The model itself is still served, by the channel left.
    const chat = await pod(2)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(chat.response.headers.get('x-kuberelay-channel')).toBe(`default/${keep[0]}`);
  });
});
