import { randomBytes } from 'node:crypto';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { memoryPacer } from '../../relay/memory-pacer.ts';
import { configYaml, type Harness, metric, startHarness, startMocks } from '../helpers/harness.ts';

// OpenAI's Files and Batch APIs through one relay, with the official `openai` SDK as the client:
// uploads stream through to one channel and the id stays pinned to it (another channel serving
// the same model never sees the file), content comes back byte for byte, a batch runs on its
// input file's channel and is charged once at the batch price, and a pinned channel removed from
// the config is a 410, never another upstream's answer.

let mocks: MockUpstream[];
let h: Harness;
const client = () => new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'unused', maxRetries: 0 });

const channels = () => [
  {
    name: 'primary',
    mock: mocks[0],
    provider: 'openai',
    models:
      '[{ name: gpt-4o-mini, pricing: { inputPer1M: "1", outputPer1M: "2", batchInputPer1M: "0.5", batchOutputPer1M: "1" } }]',
  },
  { name: 'fallback', mock: mocks[1], provider: 'openai', priority: 1 },
  {
    name: 'embedder',
    mock: mocks[2],
    provider: 'openai',
    priority: 2,
    models: '[{ name: text-embedding-3-small }]',
  },
];

beforeAll(async () => {
  mocks = await startMocks(['primary', 'fallback', 'embedder']);
  h = await startHarness(configYaml(channels()), { bodyLimit: 8 * 1024 * 1024 });
});
afterAll(async () => {
  await h?.close();
  await Promise.all((mocks ?? []).map((m) => m.close()));
});

const uploads = (m: MockUpstream) => m.stats().byPath['/v1/files'] ?? 0;

describe('files', () => {
  it('uploads with toFile, lists, retrieves, streams content byte for byte and deletes, on the channel that holds it', async () => {
    // Not text: every byte value, CRLFs and boundary-like runs included; big enough that its
    // chunks pace young collections on the way up and down (relay/memory-pacer.ts).
    const bytes = randomBytes(5 * 1024 * 1024);
    const before = mocks.map(uploads);
    const collections = memoryPacer.collections;
    const file = await client().files.create({ file: await toFile(bytes, 'data.bin'), purpose: 'user_data' });
    expect(memoryPacer.collections - collections).toBeGreaterThanOrEqual(
      Math.floor(bytes.length / memoryPacer.everyBytes),
    );
    expect(file).toMatchObject({
      object: 'file',
      bytes: bytes.length,
      filename: 'data.bin',
      purpose: 'user_data',
    });
    // The highest-priority channel with a Files API took it; the others never saw it.
    expect(mocks.map(uploads)).toEqual([before[0]! + 1, before[1], before[2]]);

    expect(await client().files.retrieve(file.id)).toMatchObject({ id: file.id, bytes: bytes.length });
    const listed = await client().files.list();
    expect(listed.data.map((f) => f.id)).toContain(file.id);
    const downloads = memoryPacer.collections;
    const content = await client().files.content(file.id);
    expect(content.headers.get('x-kuberelay-channel')).toBe('default/primary');
    expect(Buffer.from(await content.arrayBuffer()).equals(bytes)).toBe(true);
    expect(memoryPacer.collections - downloads).toBeGreaterThanOrEqual(
      Math.floor(bytes.length / memoryPacer.everyBytes),
    );

    expect(await client().files.delete(file.id)).toMatchObject({ id: file.id, deleted: true });
    const gone = await client()
      .files.retrieve(file.id)
      .catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
    expect((gone as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('file_not_found');
  });

  it('lists the newest first and pages with after and limit', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const f = await client().files.create({
        file: await toFile(Buffer.from(`n${i}`), `p${i}.txt`),
        purpose: 'assistants',
      });
      ids.push(f.id);
    }
    const seen: string[] = [];
    for await (const f of client().files.list({ limit: 2, purpose: 'assistants' })) seen.push(f.id);
    expect(seen.slice(0, 5)).toEqual([...ids].reverse());
    for (const id of ids) await client().files.delete(id);
  });

  it('x-kuberelay-model picks a channel serving that model', async () => {
    const before = uploads(mocks[2]!);
    const file = await client().files.create(
      { file: await toFile(Buffer.from('{}'), 'e.jsonl'), purpose: 'batch' },
      { headers: { 'x-kuberelay-model': 'text-embedding-3-small' } },
    );
    expect(uploads(mocks[2]!)).toBe(before + 1);
    const res = await fetch(`${h.url}/v1/files/${file.id}`);
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/embedder');
    const unknown = await fetch(`${h.url}/v1/files`, {
      method: 'POST',
      headers: { 'x-kuberelay-model': 'no-such-model', 'content-type': 'multipart/form-data; boundary=x' },
      body: '--x--\r\n',
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('model_not_found');
  });

  it('refuses what it cannot serve in OpenAI’s error shape', async () => {
    const unknown = await fetch(`${h.url}/v1/files/file-never-seen`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: object }).error).toMatchObject({
      type: 'invalid_request_error',
      code: 'file_not_found',
    });
    const json = await fetch(`${h.url}/v1/files`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: { code: string } }).error.code).toBe('invalid_content_type');
    // Over the body limit: refused before anything reaches an upstream.
    const before = uploads(mocks[0]!);
    const big = await client()
      .files.create({ file: await toFile(randomBytes(9 * 1024 * 1024), 'big.bin'), purpose: 'user_data' })
      .catch((e: unknown) => e);
    expect((big as InstanceType<typeof OpenAI.APIError>).status).toBe(413);
    expect(uploads(mocks[0]!)).toBe(before);
  });
});

describe('upstream faults', () => {
  it('an upload the channel fails passes its error through, and pins nothing', async () => {
    const before = (await client().files.list()).data.length;
    mocks[0]!.setFaults({ status: 503, count: 1 });
    const e = await client()
      .files.create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'user_data' })
      .catch((err: unknown) => err);
    expect((e as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((await client().files.list()).data.length).toBe(before);
  });

  it('a reset while reading a file is a 502 naming the channel, never another channel’s answer', async () => {
    const file = await client().files.create({
      file: await toFile(Buffer.from('y'), 'y.txt'),
      purpose: 'user_data',
    });
    const asked = mocks[1]!.stats().requests;
    mocks[0]!.setFaults({ reset: true, count: 1 });
    const res = await fetch(`${h.url}/v1/files/${file.id}/content`);
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('upstream_unreachable');
    expect(body.error.message).toContain('default/primary');
    expect(mocks[1]!.stats().requests).toBe(asked);
    await client().files.delete(file.id);
  });
});

describe('batches', () => {
  const jsonl = (n: number) =>
    Buffer.from(
      Array.from({ length: n }, (_, i) =>
        JSON.stringify({
          custom_id: `r${i}`,
          method: 'POST',
          url: '/v1/chat/completions',
          body: {
            model: 'gpt-4o-mini',
            messages: [{ role: 'user', content: `question ${i}` }],
            max_tokens: 5,
          },
        }),
      ).join('\n'),
    );

  it('runs a batch on its input file’s channel to completion, its output readable, charged once at the batch price', async () => {
    const input = await client().files.create(
      { file: await toFile(jsonl(3), 'batch.jsonl'), purpose: 'batch' },
      { headers: { 'x-kuberelay-model': 'gpt-4o-mini' } },
    );
    const created = await client().batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(created).toMatchObject({ object: 'batch', input_file_id: input.id, status: 'validating' });
    expect((await client().batches.list()).data.map((b) => b.id)).toContain(created.id);

    const costBefore = await metric(h.url, 'kuberelay_cost_usd_total', { channel: 'default/primary' });
    let batch = created;
    await expect
      .poll(
        async () => {
          batch = await client().batches.retrieve(created.id);
          return batch.status;
        },
        { timeout: 10_000, interval: 100 },
      )
      .toBe('completed');
    expect(batch.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
    const out = await client().files.content(batch.output_file_id!);
    const lines = (await out.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.custom_id).sort()).toEqual(['r0', 'r1', 'r2']);

    // Retrieved again (and on any pod): charged once, at the batch prices.
    await client().batches.retrieve(created.id);
    await client().batches.retrieve(created.id);
    const u = batch.usage!;
    const want = (u.input_tokens * 0.5 + u.output_tokens * 1) / 1e6;
    const charged =
      (await metric(h.url, 'kuberelay_cost_usd_total', { channel: 'default/primary' })) - costBefore;
    expect(charged).toBeCloseTo(want, 12);
    expect(want).toBeGreaterThan(0);
  });

  it('cancels a batch', async () => {
    const input = await client().files.create({ file: await toFile(jsonl(1), 'c.jsonl'), purpose: 'batch' });
    const b = await client().batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const cancelling = await client().batches.cancel(b.id);
    expect(cancelling.status).toBe('cancelling');
    await expect
      .poll(async () => (await client().batches.retrieve(b.id)).status, { timeout: 10_000, interval: 100 })
      .toBe('cancelled');
  });

  it('a batch the upstream fails is reported failed, with its errors', async () => {
    const input = await client().files.create({ file: await toFile(jsonl(1), 'f.jsonl'), purpose: 'batch' });
    const b = await client().batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { mock_fail: 'true' },
    });
    await expect
      .poll(async () => (await client().batches.retrieve(b.id)).status, { timeout: 10_000, interval: 100 })
      .toBe('failed');
    expect((await client().batches.retrieve(b.id)).errors?.data?.[0]?.code).toBe('invalid_json_line');
  });

  it('refuses a batch whose input file kuberelay does not know, naming the field', async () => {
    const e = await client()
      .batches.create({
        input_file_id: 'file-unknown',
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      })
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OpenAI.NotFoundError);
    expect((e as InstanceType<typeof OpenAI.NotFoundError>).param).toBe('input_file_id');
  });
});

describe('a pinned channel that is gone', () => {
  it('is a 410 with a clear message, while the same model is still served by another channel', async () => {
    const file = await client().files.create({
      file: await toFile(Buffer.from('x'), 'x.txt'),
      purpose: 'user_data',
    });
    const without = channels().filter((c) => c.name !== 'primary');
    await h.writeConfig(configYaml(without.map((c) => ({ ...c, priority: 0 }))));
    try {
      const before = mocks[1]!.stats().requests;
      const res = await fetch(`${h.url}/v1/files/${file.id}`);
      expect(res.status).toBe(410);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error).toMatchObject({ code: 'channel_gone', type: 'invalid_request_error' });
      expect(body.error.message).toContain('default/primary');
      expect(mocks[1]!.stats().requests).toBe(before); // the other channel was never asked
      const content = await fetch(`${h.url}/v1/files/${file.id}/content`);
      expect(content.status).toBe(410);
    } finally {
      await h.writeConfig(configYaml(channels()));
    }
  });
});
