import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applySnapshot, type Job, jobCost, newJobId, nextPollDelay, videoObject } from '../../jobs/model.ts';
import { encodeMultipart } from '../../jobs/upstream.ts';
import { UntranslatableError } from '../../providers/contract.ts';
import { azureVideoPrefix, openAIVideoJobs } from '../../providers/openai/videos.ts';

const ch = { baseURL: 'https://api.openai.com/v1', basePath: '/v1', apiKey: 'sk-x' };
const ops = openAIVideoJobs((c) => c.basePath);

// The video object from OpenAI's API reference (GET /v1/videos/{id}), as the SDK types it.
const OPENAI_VIDEO = {
  id: 'video_123',
  object: 'video',
  model: 'sora-2',
  status: 'completed',
  progress: 100,
  created_at: 1712697600,
  completed_at: 1712697700,
  expires_at: 1712784100,
  prompt: 'A calico cat playing a piano on stage',
  seconds: '8',
  size: '1024x1792',
  remixed_from_video_id: null,
  error: null,
};

function job(over: Partial<Job> = {}): Job {
  return {
    id: 'video_01',
    channel: 'ns/a',
    upstreamId: 'video_123',
    keyId: null,
    model: 'sora-2',
    kind: 'video',
    status: 'in_progress',
    progress: 10,
    request: { upstreamModel: 'sora-2', prompt: 'p', seconds: 8 },
    result: {},
    error: null,
    pollAttempts: 0,
    seq: 1n,
    createdAt: new Date(1_700_000_000_000),
    completedAt: null,
    dispatchedAt: new Date(1_700_000_000_000),
    cost: 0,
    version: 1,
    ...over,
  };
}

describe('OpenAI video job adapter', () => {
  it('submits JSON without an input reference, multipart with one; remix goes to the source', () => {
    const json = ops.submit(
      { kind: 'video', upstreamModel: 'sora-2', prompt: 'p', seconds: 8, size: '1280x720' },
      ch,
    );
    expect(json).toEqual({
      method: 'POST',
      path: '/v1/videos',
      body: { model: 'sora-2', prompt: 'p', seconds: '8', size: '1280x720' },
    });
    const mp = ops.submit(
      {
        kind: 'video',
        upstreamModel: 'sora-2',
        prompt: 'p',
        inputReference: { contentType: 'image/png', data: new Uint8Array([1, 2]), filename: 'a.png' },
      },
      ch,
    );
    expect(mp.multipart).toBe(true);
    expect((mp.body as Record<string, unknown>).input_reference).toMatchObject({ contentType: 'image/png' });
    const remix = ops.submit(
      { kind: 'video', upstreamModel: 'sora-2', prompt: 'again', remixOf: 'video_9' },
      ch,
    );
    expect(remix).toEqual({ method: 'POST', path: '/v1/videos/video_9/remix', body: { prompt: 'again' } });
  });

  it("reads OpenAI's documented video object; 404 on poll is gone, other errors retry", () => {
    expect(ops.parseSubmit({ ...OPENAI_VIDEO, status: 'queued', progress: 0 }, {} as never)).toEqual({
      upstreamId: 'video_123',
      snapshot: {
        status: 'queued',
        progress: 0,
        seconds: 8,
        meta: { size: '1024x1792', expires_at: 1712784100, remixed_from_video_id: null },
      },
    });
    expect(ops.parsePoll(200, OPENAI_VIDEO)).toMatchObject({
      status: 'completed',
      progress: 100,
      seconds: 8,
    });
    expect(ops.parsePoll(404, { error: { message: 'not found' } })).toBe('gone');
    expect(ops.parsePoll(429, {})).toBe('retry');
    expect(ops.parsePoll(503, {})).toBe('retry');
    expect(ops.parsePoll(200, '<html>')).toBe('retry');
    const failed = ops.parsePoll(200, {
      ...OPENAI_VIDEO,
      status: 'failed',
      error: { code: 'moderation_blocked', message: 'no' },
    });
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'moderation_blocked', message: 'no' } });
  });

  it('azure: the v1 API serves videos; a dated version is refused by name', () => {
    const az = openAIVideoJobs(azureVideoPrefix);
    const t = { baseURL: 'https://r.openai.azure.com', basePath: '', apiKey: 'k' };
    expect(az.poll('v1', t, {} as never).path).toBe('/openai/v1/videos/v1');
    expect(() => az.poll('v1', { ...t, azureApiVersion: '2024-10-21' }, {} as never)).toThrow(
      UntranslatableError,
    );
  });

  it('content and cancel calls', () => {
    expect(ops.content!('video_1', 'thumbnail', ch)).toEqual({
      method: 'GET',
      path: '/v1/videos/video_1/content?variant=thumbnail',
    });
    expect(ops.cancel!('video_1', ch)).toEqual({ method: 'DELETE', path: '/v1/videos/video_1' });
  });
});

describe('job core', () => {
  it('poll delays stay within +/-10% of the interval, back off on failures, never go below a quarter interval', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 500, max: 3_600_000 }),
        fc.integer({ min: 0, max: 20 }),
        fc.option(fc.integer({ min: 1, max: 99 }), { nil: undefined }),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (intervalMs, failures, progress, elapsedMs, r) => {
          const d = nextPollDelay({ intervalMs, failures, progress, elapsedMs, random: () => r });
          const factor = 2 ** Math.min(failures, 3);
          expect(d).toBeLessThanOrEqual(Math.round(intervalMs * factor * 1.1) + 1);
          expect(d).toBeGreaterThanOrEqual(Math.floor((intervalMs / 4) * 0.9) - 1);
          if (progress === undefined || failures > 0)
            expect(d).toBeGreaterThanOrEqual(Math.floor(intervalMs * factor * 0.9) - 1);
        },
      ),
    );
  });

  it('job ids are kuberelay-shaped, distinct and ordered by time', () => {
    const a = newJobId('video', 1_700_000_000_000);
    const b = newJobId('video', 1_700_000_000_001);
    expect(a).toMatch(/^video_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a < b).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newJobId('video'))).size).toBe(1000);
  });

  it('cost: perSecond x seconds plus perRequest', () => {
    const p = { inputPer1M: 0, outputPer1M: 0, cachedInputPer1M: 0, perRequest: 0.5, perSecond: 0.1 };
    expect(jobCost(p, 8)).toBeCloseTo(1.3, 12);
    expect(jobCost(p, undefined)).toBe(0.5);
  });

  it("the client's object: OpenAI's video shape, kuberelay's id, cancelled shown as failed", () => {
    const v = videoObject(
      job({ status: 'cancelled', error: { message: 'x', type: 't', code: 'cancelled' } }),
    );
    expect(v).toMatchObject({
      id: 'video_01',
      object: 'video',
      status: 'failed',
      seconds: '8',
      error: { code: 'cancelled' },
    });
    expect(Object.keys(videoObject(job())).sort()).toEqual(Object.keys(OPENAI_VIDEO).sort());
  });

  it('applies a snapshot: only what changed', () => {
    expect(applySnapshot(job(), { status: 'in_progress', progress: 10 })).toBeUndefined();
    expect(applySnapshot(job(), { status: 'in_progress', progress: 40 })).toEqual({ progress: 40 });
    expect(applySnapshot(job(), { status: 'completed', progress: 100, seconds: 8 })).toEqual({
      status: 'completed',
      progress: 100,
      result: { seconds: 8 },
    });
  });

  it('multipart: fields and files, as a multipart parser reads them back', async () => {
    const body = encodeMultipart(
      {
        prompt: 'a "quoted" prompt',
        input_reference: {
          contentType: 'image/png',
          data: new Uint8Array([0, 255, 13, 10]),
          filename: 'r.png',
        },
      },
      'b0undary',
    );
    const form = await new Response(body, {
      headers: { 'content-type': 'multipart/form-data; boundary=b0undary' },
    }).formData();
    expect(form.get('prompt')).toBe('a "quoted" prompt');
    const file = form.get('input_reference') as File;
    expect(file.type).toBe('image/png');
    expect([...new Uint8Array(await file.arrayBuffer())]).toEqual([0, 255, 13, 10]);
  });
});
