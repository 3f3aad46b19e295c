// Veo on the gemini adapter: long-running operations. Native bodies follow the REST examples of
// Google's "Generate videos with Veo" guide (ai.google.dev/gemini-api/docs/video): the
// predictLongRunning request, the `{"name": ...}` answer, the polled operation and its
// `response.generateVideoResponse.generatedSamples[].video.uri`, and the API reference's
// PredictLongRunningGeneratedVideoResponse (`raiMediaFilteredCount`, `raiMediaFilteredReasons`).
import { describe, expect, it } from 'vitest';
import { type ChannelTarget, UntranslatableError } from '../../providers/contract.ts';
import { adapterFor } from '../../providers/index.ts';
import type { JobRequest } from '../../providers/jobs.ts';

const gemini = adapterFor('gemini');
const jobs = gemini.jobs!;
const channel: ChannelTarget = {
  baseURL: 'https://generativelanguage.googleapis.com',
  basePath: '',
  apiKey: 'AIza-secret',
};
const req = (over: Partial<JobRequest> = {}): JobRequest => ({
  kind: 'video',
  upstreamModel: 'veo-3.0-generate-001',
  prompt: 'A close up of two people staring at a cryptic drawing on a wall, torchlight flickering.',
  ...over,
});
const NAME = 'models/veo-3.0-generate-001/operations/8x2v0vd7ydt6';
const URI = 'https://generativelanguage.googleapis.com/v1beta/files/3smjyo5ba2jm:download?alt=media';

describe('gemini Veo jobs', () => {
  it('runs video jobs only', () => {
    expect(jobs.supports('video')).toBe(true);
    expect(jobs.supports('image')).toBe(false);
  });

  it('submit: POST models/{model}:predictLongRunning with instances and parameters', () => {
    expect(
      jobs.submit(req({ size: '1280x720', seconds: 8, extra: { negativePrompt: 'cartoon' } }), channel),
    ).toEqual({
      method: 'POST',
      path: '/v1beta/models/veo-3.0-generate-001:predictLongRunning',
      headers: { 'content-type': 'application/json' },
      body: {
        instances: [{ prompt: req().prompt }],
        parameters: {
          negativePrompt: 'cartoon',
          aspectRatio: '16:9',
          resolution: '720p',
          durationSeconds: 8,
        },
      },
    });
    expect(jobs.submit(req(), { ...channel, basePath: '/v1beta' }).body).toEqual({
      instances: [{ prompt: req().prompt }],
    });
  });

  it('a first frame goes inline as bytesBase64Encoded with its mime type', () => {
    const data = new Uint8Array([1, 2, 3]);
    const body = jobs.submit(req({ inputReference: { contentType: 'image/png', data } }), channel).body as {
      instances: { image: unknown }[];
    };
    expect(body.instances[0]!.image).toEqual({ bytesBase64Encoded: 'AQID', mimeType: 'image/png' });
  });

  it('refuses sizes, seconds, references and remixes Veo cannot take, naming the field', () => {
    const field = (over: Partial<JobRequest>) => {
      try {
        jobs.submit(req(over), channel);
      } catch (err) {
        if (err instanceof UntranslatableError) return err.field;
        throw err;
      }
      return undefined;
    };
    expect(field({ size: '1792x1024' })).toBe('size');
    expect(field({ seconds: 4.5 })).toBe('seconds');
    expect(field({ inputReference: { contentType: 'video/mp4', data: new Uint8Array(1) } })).toBe(
      'input_reference',
    );
    expect(field({ remixOf: NAME })).toBe('remix');
  });

  it('parseSubmit: the operation name is the upstream id; the requested (or default 8) seconds are billed', () => {
    expect(jobs.parseSubmit({ name: NAME }, req({ seconds: 6 }))).toEqual({
      upstreamId: NAME,
      snapshot: { status: 'queued', seconds: 6 },
    });
    expect(jobs.parseSubmit({ name: NAME }, req()).snapshot.seconds).toBe(8);
    expect(jobs.parseSubmit({ nope: 1 }, req()).snapshot).toMatchObject({ status: 'failed' });
    expect(jobs.parseSubmit({ name: '../../files/x' }, req()).snapshot).toMatchObject({ status: 'failed' });
  });

  it('poll: GET {root}/{operation name}; a name that is not one is refused', () => {
    expect(jobs.poll(NAME, channel, req())).toEqual({ method: 'GET', path: `/v1beta/${NAME}` });
    expect(jobs.poll(NAME, { ...channel, basePath: '/v1alpha' }, req()).path).toBe(`/v1alpha/${NAME}`);
    expect(() => jobs.poll('models/x/operations/../../files', channel, req())).toThrow();
  });

  it('every operation state maps to a job state', () => {
    expect(jobs.parsePoll(200, { name: NAME })).toEqual({ status: 'in_progress' });
    expect(jobs.parsePoll(200, { name: NAME, done: false })).toEqual({ status: 'in_progress' });
    const done = {
      name: NAME,
      done: true,
      response: {
        '@type': 'type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse',
        generateVideoResponse: { generatedSamples: [{ video: { uri: URI } }] },
      },
    };
    expect(jobs.parsePoll(200, done)).toEqual({
      status: 'completed',
      progress: 100,
      resultURL: URI,
      resultAuth: true,
      meta: { uri: URI },
    });
    expect(
      jobs.parsePoll(200, {
        name: NAME,
        done: true,
        error: { code: 3, message: 'Unsupported aspect ratio.' },
      }),
    ).toEqual({
      status: 'failed',
      error: {
        message: 'Unsupported aspect ratio.',
        type: 'invalid_request_error',
        code: 'invalid_argument',
      },
    });
    expect(jobs.parsePoll(200, { name: NAME, done: true, error: { code: 13 } })).toEqual({
      status: 'failed',
      error: { message: 'Veo failed to generate the video.', type: 'server_error', code: 'internal' },
    });
    const filtered = {
      name: NAME,
      done: true,
      response: {
        generateVideoResponse: {
          raiMediaFilteredCount: 1,
          raiMediaFilteredReasons: ["We can't create videos of this person. Try another prompt."],
        },
      },
    };
    expect(jobs.parsePoll(200, filtered)).toEqual({
      status: 'failed',
      error: {
        message: "We can't create videos of this person. Try another prompt.",
        type: 'invalid_request_error',
        code: 'content_policy_violation',
      },
    });
    expect(jobs.parsePoll(200, { name: NAME, done: true, response: {} })).toMatchObject({
      status: 'failed',
      error: { code: 'upstream_error' },
    });
  });

  it('a forgotten operation is gone; other failures of the status call are asked again', () => {
    expect(jobs.parsePoll(404, { error: { code: 404, status: 'NOT_FOUND' } })).toBe('gone');
    for (const s of [429, 500, 503, 400, 403])
      expect(jobs.parsePoll(s, { error: { code: s } })).toBe('retry');
    expect(jobs.parsePoll(200, 'not json')).toBe('retry');
  });
});
