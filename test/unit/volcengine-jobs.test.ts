// The volcengine job adapter: Jimeng/Seedance async tasks on the visual API. Native bodies are
// shaped as the examples of Volcengine's Jimeng API docs (即梦AI 视频生成 / 图片生成: request
// parameters, CVSync2AsyncSubmitTask and CVSync2AsyncGetResult answers, the error-code table);
// ids are theirs, URLs shortened.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ChannelTarget, UntranslatableError } from '../../providers/contract.ts';
import { adapterFor } from '../../providers/index.ts';
import type { JobRequest } from '../../providers/jobs.ts';

const volc = adapterFor('volcengine');
const jobs = volc.jobs!;
const channel: ChannelTarget = {
  baseURL: 'https://visual.volcengineapi.com',
  basePath: '',
  apiKey: 'AKLT-id',
  credentials: { accessKeyId: 'AKLT-id', secretAccessKey: 'sk' },
};
const video = (over: Partial<JobRequest> = {}): JobRequest => ({
  kind: 'video',
  upstreamModel: 'jimeng_vgfm_t2v_l20',
  prompt: '千军万马',
  ...over,
});

const submitted = {
  code: 10000,
  data: { task_id: '7392616336519610409' },
  message: 'Success',
  request_id: '20240720103939AF0029465CF6A74E51EC',
  status: 10000,
  time_elapsed: '104.852309ms',
};
const result = (data: Record<string, unknown>) => ({
  code: 10000,
  data: { resp_data: '', ...data },
  message: 'Success',
  request_id: '2024072010403989D6C3E0D2A6C5A0FAE2',
  status: 10000,
  time_elapsed: '8.118329ms',
});
const businessError = (code: number, message: string) => ({
  code,
  data: null,
  message,
  request_id: '20240720104039ABCDEF',
  status: code,
  time_elapsed: '10.2ms',
});

describe('volcengine adapter', () => {
  it('serves video and image jobs, no chat-style operation, and signs instead of a header key', () => {
    expect(['chat', 'completions', 'embeddings', 'images'].some((op) => volc.supports(op as never))).toBe(
      false,
    );
    expect(jobs.supports('video')).toBe(true);
    expect(jobs.supports('image')).toBe(true);
    expect(volc.auth(channel)).toEqual({});
    expect(typeof volc.sign).toBe('function');
  });

  it('submit: CVSync2AsyncSubmitTask with req_key = upstreamName, frames from seconds, aspect_ratio from size', () => {
    const call = jobs.submit(video({ seconds: 10, size: '1280x720', extra: { seed: -1 } }), channel);
    expect(call).toEqual({
      method: 'POST',
      path: '/?Action=CVSync2AsyncSubmitTask&Version=2022-08-31',
      headers: { 'content-type': 'application/json' },
      body: {
        seed: -1,
        req_key: 'jimeng_vgfm_t2v_l20',
        prompt: '千军万马',
        frames: 241,
        aspect_ratio: '16:9',
      },
    });
    expect(jobs.submit(video(), channel).body).toEqual({
      req_key: 'jimeng_vgfm_t2v_l20',
      prompt: '千军万马',
    });
  });

  it('the contract names win over extra fields of the same name', () => {
    const body = jobs.submit(video({ extra: { req_key: 'other', prompt: 'x' } }), channel).body;
    expect(body).toMatchObject({ req_key: 'jimeng_vgfm_t2v_l20', prompt: '千军万马' });
  });

  it('an input image goes as binary_data_base64 (image-to-video); a video reference is refused', () => {
    const data = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
    const body = jobs.submit(
      video({ upstreamModel: 'jimeng_i2v_first_v30', inputReference: { contentType: 'image/png', data } }),
      channel,
    ).body as Record<string, unknown>;
    expect(body['binary_data_base64']).toEqual([Buffer.from(data).toString('base64')]);
    expect(() => jobs.submit(video({ inputReference: { contentType: 'video/mp4', data } }), channel)).toThrow(
      UntranslatableError,
    );
  });

  it('refuses what the API cannot express, naming the field', () => {
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err instanceof UntranslatableError ? err.field : 'other';
      }
      return undefined;
    };
    expect(field(() => jobs.submit(video({ seconds: 8 }), channel))).toBe('seconds');
    expect(field(() => jobs.submit(video({ size: '2000x1000' }), channel))).toBe('size');
    expect(field(() => jobs.submit(video({ size: 'big' }), channel))).toBe('size');
    expect(field(() => jobs.submit(video({ remixOf: '7392616336519610409' }), channel))).toBe('remix');
  });

  it('every WIDTHxHEIGHT with a supported aspect ratio maps to that ratio', () => {
    const ratios = [
      [16, 9],
      [4, 3],
      [1, 1],
      [3, 4],
      [9, 16],
      [21, 9],
    ] as const;
    fc.assert(
      fc.property(fc.constantFrom(...ratios), fc.integer({ min: 16, max: 200 }), ([w, h], k) => {
        const body = jobs.submit(video({ size: `${w * k}x${h * k}` }), channel).body as Record<
          string,
          unknown
        >;
        expect(body['aspect_ratio']).toBe(`${w}:${h}`);
      }),
    );
  });

  it("OpenAI's video sizes and rounded 21:9 sizes land on the nearest supported ratio", () => {
    const ratio = (size: string) =>
      (jobs.submit(video({ size }), channel).body as Record<string, unknown>)['aspect_ratio'];
    expect(['1280x720', '720x1280', '1792x1024', '1024x1792', '2560x1080'].map(ratio)).toEqual([
      '16:9',
      '9:16',
      '16:9',
      '9:16',
      '21:9',
    ]);
  });

  it('images: width and height from size; the poll asks for URLs (req_json return_url)', () => {
    const req: JobRequest = {
      kind: 'image',
      upstreamModel: 'jimeng_t2i_v31',
      prompt: 'a cat',
      size: '1328x1328',
    };
    expect(jobs.submit(req, channel).body).toEqual({
      req_key: 'jimeng_t2i_v31',
      prompt: 'a cat',
      width: 1328,
      height: 1328,
    });
    expect(jobs.poll('7392616336519610409', channel, req)).toEqual({
      method: 'POST',
      path: '/?Action=CVSync2AsyncGetResult&Version=2022-08-31',
      headers: { 'content-type': 'application/json' },
      body: { req_key: 'jimeng_t2i_v31', task_id: '7392616336519610409', req_json: '{"return_url":true}' },
    });
  });

  it('parseSubmit: the task_id, queued, and the seconds billed (5 by default: 121 frames)', () => {
    expect(jobs.parseSubmit(submitted, video({ seconds: 10 }))).toEqual({
      upstreamId: '7392616336519610409',
      snapshot: { status: 'queued', seconds: 10 },
    });
    expect(jobs.parseSubmit(submitted, video()).snapshot.seconds).toBe(5);
    const image = jobs.parseSubmit(submitted, {
      kind: 'image',
      upstreamModel: 'jimeng_t2i_v31',
      prompt: 'p',
    });
    expect(image.snapshot).toEqual({ status: 'queued' });
  });

  it('parseSubmit: a 2xx carrying an error code is a job failed at submit', () => {
    const r = jobs.parseSubmit(businessError(50412, 'Text Risk Not Pass'), video());
    expect(r.snapshot).toEqual({
      status: 'failed',
      error: {
        message: 'Text Risk Not Pass',
        type: 'invalid_request_error',
        code: 'content_policy_violation',
      },
    });
  });

  it('poll: the task_id with the model req_key, under the channel base path', () => {
    expect(jobs.poll('42', { ...channel, basePath: '/proxy' }, video())).toEqual({
      method: 'POST',
      path: '/proxy/?Action=CVSync2AsyncGetResult&Version=2022-08-31',
      headers: { 'content-type': 'application/json' },
      body: { req_key: 'jimeng_vgfm_t2v_l20', task_id: '42' },
    });
  });

  it('every task status maps to a job state', () => {
    expect(jobs.parsePoll(200, result({ status: 'in_queue' }))).toEqual({ status: 'queued' });
    expect(jobs.parsePoll(200, result({ status: 'generating' }))).toEqual({ status: 'in_progress' });
    expect(
      jobs.parsePoll(200, result({ status: 'done', video_url: 'https://v.example/7392.mp4?sig=x' })),
    ).toEqual({
      status: 'completed',
      progress: 100,
      resultURL: 'https://v.example/7392.mp4?sig=x',
      meta: { video_url: 'https://v.example/7392.mp4?sig=x' },
    });
    expect(jobs.parsePoll(200, result({ status: 'not_found' }))).toBe('gone');
    expect(jobs.parsePoll(200, result({ status: 'expired' }))).toMatchObject({
      status: 'failed',
      error: { code: 'expired', type: 'invalid_request_error' },
    });
    expect(jobs.parsePoll(200, result({ status: 'done' }))).toMatchObject({
      status: 'failed',
      error: { code: 'upstream_error' },
    });
    expect(jobs.parsePoll(200, result({ status: 'paused' }))).toMatchObject({ status: 'failed' });
  });

  it('a finished image task: the URLs (the first is the content) and the base64 bytes', () => {
    const done = jobs.parsePoll(
      200,
      result({
        status: 'done',
        image_urls: ['https://i.example/1.png', 'https://i.example/2.png'],
        binary_data_base64: ['iVBORw0KGgo='],
      }),
    );
    expect(done).toEqual({
      status: 'completed',
      progress: 100,
      resultURL: 'https://i.example/1.png',
      meta: {
        image_urls: ['https://i.example/1.png', 'https://i.example/2.png'],
        b64_json: ['iVBORw0KGgo='],
      },
    });
    const bytesOnly = jobs.parsePoll(200, result({ status: 'done', binary_data_base64: ['iVBORw0KGgo='] }));
    expect(bytesOnly).toEqual({ status: 'completed', progress: 100, meta: { b64_json: ['iVBORw0KGgo='] } });
  });

  it('errors: moderation ends the job; limits, internal errors and auth are asked again; 404 is gone', () => {
    expect(jobs.parsePoll(400, businessError(50511, 'Post Img Risk Not Pass'))).toEqual({
      status: 'failed',
      error: {
        message: 'Post Img Risk Not Pass',
        type: 'invalid_request_error',
        code: 'content_policy_violation',
      },
    });
    expect(
      jobs.parsePoll(429, businessError(50430, 'Request Has Reached API Concurrent Limit, Please Try Later')),
    ).toBe('retry');
    expect(jobs.parsePoll(200, businessError(50429, 'Request Has Reached API Limit, Please Try Later'))).toBe(
      'retry',
    );
    expect(jobs.parsePoll(500, businessError(50500, 'Internal Error'))).toBe('retry');
    expect(jobs.parsePoll(502, '<html>bad gateway</html>')).toBe('retry');
    const gateway = {
      ResponseMetadata: {
        RequestId: '2024',
        Action: 'CVSync2AsyncGetResult',
        Version: '2022-08-31',
        Service: 'cv',
        Region: 'cn-north-1',
        Error: {
          CodeN: 100010,
          Code: 'SignatureDoesNotMatch',
          Message: 'The request signature we calculated does not match the signature you provided.',
        },
      },
    };
    expect(jobs.parsePoll(401, gateway)).toBe('retry');
    expect(jobs.parsePoll(404, {})).toBe('gone');
  });

  it('errorOf: both native shapes in OpenAI form, the upstream message kept', () => {
    const gateway = (Code: string, CodeN: number, Message: string) => ({
      ResponseMetadata: { RequestId: 'r', Error: { Code, CodeN, Message } },
    });
    expect(volc.errorOf!(401, gateway('SignatureDoesNotMatch', 100010, 'does not match'))).toEqual({
      message: 'does not match',
      type: 'authentication_error',
      code: 'invalid_api_key',
    });
    expect(volc.errorOf!(401, gateway('InvalidAccessKey', 100009, 'invalid key'))).toMatchObject({
      type: 'authentication_error',
    });
    expect(volc.errorOf!(403, gateway('AccessDenied', 100013, 'not authorized'))).toMatchObject({
      type: 'permission_error',
      code: 'AccessDenied',
    });
    expect(
      volc.errorOf!(429, businessError(50429, 'Request Has Reached API Limit, Please Try Later')),
    ).toEqual({
      message: 'Request Has Reached API Limit, Please Try Later',
      type: 'rate_limit_error',
      code: 'rate_limit_exceeded',
    });
    expect(volc.errorOf!(429, businessError(50430, 'Concurrent Limit'))).toMatchObject({
      code: 'concurrency_limit_exceeded',
    });
    expect(volc.errorOf!(500, businessError(50501, 'Internal RPC Error'))).toMatchObject({
      type: 'server_error',
    });
    expect(volc.errorOf!(400, businessError(50200, 'Invalid Parameter'))).toEqual({
      message: 'Invalid Parameter',
      type: 'invalid_request_error',
      code: 'volcengine_50200',
    });
    expect(volc.errorOf!(502, 'not json')).toEqual({
      message: 'Volcengine answered HTTP 502.',
      type: 'server_error',
      code: null,
    });
  });
});
