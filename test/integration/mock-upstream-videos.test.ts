import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mockVideoBytes } from '../../mock-upstream/openai/videos.ts';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';

/** The mock's async video jobs, driven by the official SDK as a provider's client would be. */
describe('mock upstream: OpenAI video jobs', () => {
  let mock: MockUpstream;
  let sdk: OpenAI;

  beforeAll(async () => {
    mock = await startMockUpstream({ apiKey: 'k', videos: { durationMs: 600, maxRunning: 2 } });
    sdk = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'k', maxRetries: 0 });
  });
  afterAll(() => mock?.close());

  it('runs a job to completion with rising progress, counts status calls, serves deterministic bytes and ranges', async () => {
    mock.videos.reset();
    const v = await sdk.videos.create({ model: 'sora-2', prompt: 'p [bytes=5000]', seconds: '4' });
    expect(v).toMatchObject({ object: 'video', status: 'queued', progress: 0, seconds: '4' });
    const seen: number[] = [];
    let cur = v;
    while (cur.status !== 'completed') {
      await new Promise((r) => setTimeout(r, 100));
      cur = await sdk.videos.retrieve(v.id);
      seen.push(cur.progress);
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(seen.at(-1)).toBe(100);
    expect(mock.videos.stats().statusCalls[v.id]).toBe(seen.length);
    const all = Buffer.from(await (await sdk.videos.downloadContent(v.id)).arrayBuffer());
    expect(all).toEqual(mockVideoBytes(0, 5000));
    const part = await fetch(`${mock.url}/v1/videos/${v.id}/content`, {
      headers: { authorization: 'Bearer k', range: 'bytes=10-19' },
    });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 10-19/5000');
    expect(Buffer.from(await part.arrayBuffer())).toEqual(mockVideoBytes(10, 20));
    const bad = await fetch(`${mock.url}/v1/videos/${v.id}/content`, {
      headers: { authorization: 'Bearer k', range: 'bytes=9000-' },
    });
    expect(bad.status).toBe(416);
  });

  it('answers 429 past its own concurrency limit and records the most running at once', async () => {
    mock.videos.reset();
    await sdk.videos.create({ prompt: 'a' });
    await sdk.videos.create({ prompt: 'b' });
    await expect(sdk.videos.create({ prompt: 'c' })).rejects.toMatchObject({ status: 429 });
    expect(mock.videos.stats()).toMatchObject({
      submitted: 2,
      rejected: 1,
      maxRunning: 2,
      order: ['a', 'b'],
    });
  });

  it('fails a [fail] job at its end; forgets jobs on request (404)', async () => {
    mock.videos.reset();
    const v = await sdk.videos.create({ prompt: 'x [fail] [duration=100]' });
    await new Promise((r) => setTimeout(r, 200));
    const done = await sdk.videos.retrieve(v.id);
    expect(done).toMatchObject({ status: 'failed', error: { code: 'moderation_blocked' } });
    mock.videos.forgetAll();
    await expect(sdk.videos.retrieve(v.id)).rejects.toMatchObject({ status: 404 });
  });
});
