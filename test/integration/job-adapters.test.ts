// The volcengine and gemini (Veo) job adapters against the mock upstream, through the relay's own
// pieces: the channel is rendered from config and compiled as the relay compiles it (credentials,
// auth headers, the `sign` hook), and each UpstreamCall is sent the way the job plane sends one
// (JSON body, the channel's headers, signed as sent; undici). The mock verifies Volcengine's
// signature with the key pair it was started with, and simulates the upstreams' async tasks.
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderFile } from '../../core/config/load.ts';
import { type MockUpstream, runMockUpstreamCli, startMockUpstream } from '../../mock-upstream/server.ts';
import { FAIL_MARKER, FILTER_MARKER, resultBytes } from '../../mock-upstream/task-sim.ts';
import type { JobRequest, JobSnapshot, UpstreamCall } from '../../providers/jobs.ts';
import { type ChannelRuntime, compileRuntime } from '../../relay/runtime.ts';
import { startHarness } from '../helpers/harness.ts';

const AK = 'AKLTmockAccessKeyId';
const SK = 'bW9jay1zZWNyZXQtYWNjZXNzLWtleQ==';
const GEMINI_KEY = 'AIza-mock-key';
const RESULT_BYTES = 300_000;

let mock: MockUpstream;

beforeAll(async () => {
  mock = await startMockUpstream({
    apiKey: GEMINI_KEY,
    volcengine: { accessKeyId: AK, secretAccessKey: SK },
    tasks: { queueMs: 50, durationMs: 250, maxConcurrent: 2, resultBytes: RESULT_BYTES },
  });
});
afterAll(() => mock.close());

function channel(
  provider: 'volcengine' | 'gemini',
  secret: string,
  model: string,
  baseURL = mock.url,
): ChannelRuntime {
  const yaml = `apiVersion: v1
kind: Secret
metadata: { name: keys }
stringData: ${secret}
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: c }
spec:
  provider: ${provider}
  baseURL: ${baseURL}
  apiKeySecretRef: { name: keys }
  models: [{ name: m, upstreamName: ${model} }]
`;
  const { config } = renderFile(yaml, 'test.yaml', { generation: 1 }, {});
  return compileRuntime(config).runtime.channels.get('default/c')!;
}

/** What the job plane does with an UpstreamCall: serialise, add the channel's headers, sign, send. */
async function send(ch: ChannelRuntime, call: UpstreamCall, extra: Record<string, string> = {}) {
  const body = call.body === undefined ? '' : JSON.stringify(call.body);
  const url = ch.origin + call.path;
  let headers: Record<string, string> = { ...call.headers, ...ch.headers, ...extra };
  if (ch.adapter.sign)
    headers = { ...headers, ...ch.adapter.sign({ method: call.method, url, headers, body }, ch.target) };
  const res = await request(url, {
    method: call.method,
    headers,
    body: body === '' ? undefined : body,
    dispatcher: ch.dispatcher,
  });
  const text = await res.body.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.statusCode, body: json };
}

/** Polls until terminal (bounded), returning every snapshot seen. */
async function pollToEnd(ch: ChannelRuntime, id: string, req: JobRequest) {
  const jobs = ch.adapter.jobs!;
  const seen: (JobSnapshot | 'gone' | 'retry')[] = [];
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    const { status, body } = await send(ch, jobs.poll(id, ch.target, req));
    const snap = jobs.parsePoll(status, body);
    seen.push(snap);
    if (snap === 'gone' || (snap !== 'retry' && ['completed', 'failed', 'cancelled'].includes(snap.status))) {
      return seen;
    }
    await new Promise((r) => setTimeout(r, 40));
  }
  throw new Error(`job ${id} did not end: ${JSON.stringify(seen.at(-1))}`);
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function download(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, bytes: Buffer.from(await res.body.arrayBuffer()) };
}

describe('volcengine jobs against the mock', () => {
  const creds = `{ accessKeyId: ${AK}, secretAccessKey: "${SK}" }`;
  const video: JobRequest = {
    kind: 'video',
    upstreamModel: 'jimeng_vgfm_t2v_l20',
    prompt: 'a red fox',
    seconds: 5,
    size: '1280x720',
  };

  it('submit, poll through in_queue/generating to done, and the bytes at video_url match (Range: 206)', async () => {
    const ch = channel('volcengine', creds, 'jimeng_vgfm_t2v_l20');
    const jobs = ch.adapter.jobs!;
    const sub = await send(ch, jobs.submit(video, ch.target));
    expect(sub.status).toBe(200);
    const { upstreamId, snapshot } = jobs.parseSubmit(sub.body, video);
    expect(snapshot).toEqual({ status: 'queued', seconds: 5 });
    const seen = await pollToEnd(ch, upstreamId, video);
    const last = seen.at(-1) as JobSnapshot;
    expect(last.status).toBe('completed');
    expect(
      seen
        .slice(0, -1)
        .every((s) => s !== 'retry' && s !== 'gone' && ['queued', 'in_progress'].includes(s.status)),
    ).toBe(true);
    const whole = await download(last.resultURL!);
    expect(whole.status).toBe(200);
    expect(whole.headers['content-type']).toBe('video/mp4');
    expect(sha(whole.bytes)).toBe(sha(resultBytes(upstreamId, RESULT_BYTES)));
    const part = await download(last.resultURL!, { range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${RESULT_BYTES}`);
    expect(part.bytes.equals(whole.bytes.subarray(1000, 2000))).toBe(true);
    expect(mock.taskStats()['volcengine']!.polls[upstreamId]).toBe(seen.length);
  });

  it('an image task: image_urls (the content) and the same bytes as base64', async () => {
    const ch = channel('volcengine', creds, 'jimeng_t2i_v31');
    const jobs = ch.adapter.jobs!;
    const req: JobRequest = {
      kind: 'image',
      upstreamModel: 'jimeng_t2i_v31',
      prompt: 'a cat',
      size: '1328x1328',
    };
    const { upstreamId } = jobs.parseSubmit((await send(ch, jobs.submit(req, ch.target))).body, req);
    const last = (await pollToEnd(ch, upstreamId, req)).at(-1) as JobSnapshot;
    expect(last.status).toBe('completed');
    expect(last.resultURL).toMatch(/\.png$/);
    const png = await download(last.resultURL!);
    expect(png.bytes.equals(resultBytes(upstreamId, RESULT_BYTES))).toBe(true);
    expect(Buffer.from((last.meta!['b64_json'] as string[])[0]!, 'base64').equals(png.bytes)).toBe(true);
  });

  it('the upstream concurrency limit answers 50430 (429), mapped to a rate-limit error', async () => {
    const ch = channel('volcengine', creds, 'jimeng_vgfm_t2v_l20');
    const jobs = ch.adapter.jobs!;
    const answers = await Promise.all([0, 1, 2].map(() => send(ch, jobs.submit(video, ch.target))));
    const refused = answers.filter((a) => a.status === 429);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(ch.adapter.errorOf!(429, refused[0]!.body)).toMatchObject({
      type: 'rate_limit_error',
      code: 'concurrency_limit_exceeded',
    });
    expect(mock.taskStats()['volcengine']!.maxRunning).toBeLessThanOrEqual(2);
    // let the accepted ones finish, so later tests have room
    for (const a of answers.filter((x) => x.status === 200))
      await pollToEnd(ch, jobs.parseSubmit(a.body, video).upstreamId, video);
  });

  it('a task whose output fails moderation ends failed; an unknown task is gone; a 5xx is asked again', async () => {
    const ch = channel('volcengine', creds, 'jimeng_vgfm_t2v_l20');
    const jobs = ch.adapter.jobs!;
    const bad = { ...video, prompt: `a fox ${FAIL_MARKER}` };
    const { upstreamId } = jobs.parseSubmit((await send(ch, jobs.submit(bad, ch.target))).body, bad);
    expect((await pollToEnd(ch, upstreamId, bad)).at(-1)).toMatchObject({
      status: 'failed',
      error: { type: 'invalid_request_error', code: 'content_policy_violation' },
    });
    expect((await pollToEnd(ch, '7392616336519610409', video)).at(-1)).toBe('gone');
    const faulted = await send(ch, jobs.poll(upstreamId, ch.target, bad), { 'x-mock-status': '500' });
    expect(faulted.status).toBe(500);
    expect(jobs.parsePoll(faulted.status, faulted.body)).toBe('retry');
  });

  it('a wrong secret, a wrong access key, a body changed after signing or no signature get the gateway error', async () => {
    const good = channel('volcengine', creds, 'jimeng_vgfm_t2v_l20');
    const jobs = good.adapter.jobs!;
    const call = jobs.submit(video, good.target);
    const gatewayCode = (b: unknown) =>
      (b as { ResponseMetadata: { Error: { Code: string } } }).ResponseMetadata.Error.Code;

    const wrongSecret = channel(
      'volcengine',
      `{ accessKeyId: ${AK}, secretAccessKey: bm9wZQ== }`,
      'jimeng_vgfm_t2v_l20',
    );
    const a = await send(wrongSecret, call);
    expect([a.status, gatewayCode(a.body)]).toEqual([401, 'SignatureDoesNotMatch']);
    expect(good.adapter.errorOf!(a.status, a.body)).toMatchObject({
      type: 'authentication_error',
      code: 'invalid_api_key',
    });
    expect(JSON.stringify(a.body)).not.toContain(SK);

    const wrongKey = channel(
      'volcengine',
      `{ accessKeyId: AKLTother, secretAccessKey: "${SK}" }`,
      'jimeng_vgfm_t2v_l20',
    );
    const b = await send(wrongKey, call);
    expect([b.status, gatewayCode(b.body)]).toEqual([401, 'InvalidAccessKey']);

    // signed for one body, sent with another
    const url = good.origin + call.path;
    const body = JSON.stringify(call.body);
    const headers = {
      ...call.headers,
      ...good.adapter.sign!({ method: 'POST', url, headers: call.headers!, body }, good.target),
    };
    const tampered = await request(url, {
      method: 'POST',
      headers,
      body: body.replace('a red fox', 'a blue fox'),
    });
    expect(tampered.statusCode).toBe(401);
    expect(gatewayCode(await tampered.body.json())).toBe('SignatureDoesNotMatch');

    const unsigned = await request(url, { method: 'POST', headers: call.headers, body });
    expect(unsigned.statusCode).toBe(401);
    expect(gatewayCode(await unsigned.body.json())).toBe('MissingAuthenticationToken');
  });
});

describe('gemini Veo jobs against the mock', () => {
  const req: JobRequest = {
    kind: 'video',
    upstreamModel: 'veo-3.0-generate-001',
    prompt: 'waves at dusk',
    seconds: 8,
    size: '1920x1080',
  };

  it('predictLongRunning, poll the operation to done, download the sample with the channel key through its redirect (Range: 206)', async () => {
    const ch = channel('gemini', `{ apiKey: ${GEMINI_KEY} }`, 'veo-3.0-generate-001');
    const jobs = ch.adapter.jobs!;
    const sub = await send(ch, jobs.submit(req, ch.target));
    expect(sub.status).toBe(200);
    const { upstreamId, snapshot } = jobs.parseSubmit(sub.body, req);
    expect(upstreamId).toMatch(/^models\/veo-3\.0-generate-001\/operations\//);
    expect(snapshot).toEqual({ status: 'queued', seconds: 8 });
    // an injected upstream fault on the status call is Gemini-shaped and asked again
    const faulted = await send(ch, jobs.poll(upstreamId, ch.target, req), { 'x-mock-status': '503' });
    expect([faulted.status, (faulted.body as { error: { status: string } }).error.status]).toEqual([
      503,
      'UNAVAILABLE',
    ]);
    expect(jobs.parsePoll(faulted.status, faulted.body)).toBe('retry');
    const last = (await pollToEnd(ch, upstreamId, req)).at(-1) as JobSnapshot;
    expect(last).toMatchObject({ status: 'completed', resultAuth: true });
    expect(new URL(last.resultURL!).origin).toBe(ch.origin);
    const id = upstreamId.slice(upstreamId.lastIndexOf('/') + 1);
    const bare = await download(last.resultURL!);
    expect(bare.status).toBe(400); // the key is required, as at Google
    // with the key: a redirect to a signed media URL (fetched bare), as Google's download answers
    const keyed = await download(last.resultURL!, ch.headers);
    expect(keyed.status).toBe(302);
    const media = String(keyed.headers['location']);
    const whole = await download(media);
    expect(whole.status).toBe(200);
    expect(sha(whole.bytes)).toBe(sha(resultBytes(id, RESULT_BYTES)));
    const followed = await fetch(last.resultURL!, { headers: ch.headers });
    expect(Buffer.from(await followed.arrayBuffer()).equals(whole.bytes)).toBe(true);
    // a wrong signature is no credential: refused like a request without the key
    expect((await download(media.replace(/sig=[0-9a-f]+/, 'sig=0'))).status).toBe(400);
    const tail = await download(media, { range: 'bytes=-100' });
    expect(tail.status).toBe(206);
    expect(tail.bytes.equals(whole.bytes.subarray(RESULT_BYTES - 100))).toBe(true);
  });

  it('an operation that fails, one filtered for safety, and one the upstream forgot', async () => {
    const ch = channel('gemini', `{ apiKey: ${GEMINI_KEY} }`, 'veo-3.0-generate-001');
    const jobs = ch.adapter.jobs!;
    const run = async (prompt: string) => {
      const r = { ...req, prompt };
      const { upstreamId } = jobs.parseSubmit((await send(ch, jobs.submit(r, ch.target))).body, r);
      return (await pollToEnd(ch, upstreamId, r)).at(-1);
    };
    const [failed, filtered] = await Promise.all([run(`x ${FAIL_MARKER}`), run(`y ${FILTER_MARKER}`)]);
    expect(failed).toMatchObject({ status: 'failed', error: { type: 'server_error', code: 'internal' } });
    expect(filtered).toMatchObject({ status: 'failed', error: { code: 'content_policy_violation' } });
    expect((await pollToEnd(ch, 'models/veo-3.0-generate-001/operations/unknown1', req)).at(-1)).toBe('gone');
  });

  it("past the upstream's concurrency limit a submit is 429 RESOURCE_EXHAUSTED, a rate-limit error", async () => {
    const ch = channel('gemini', `{ apiKey: ${GEMINI_KEY} }`, 'veo-3.0-generate-001');
    const jobs = ch.adapter.jobs!;
    const answers = await Promise.all([0, 1, 2].map(() => send(ch, jobs.submit(req, ch.target))));
    const refused = answers.find((a) => a.status === 429);
    expect(refused).toBeDefined();
    expect(ch.adapter.errorOf!(429, refused!.body)).toMatchObject({
      type: 'rate_limit_error',
      code: 'resource_exhausted',
    });
    expect(mock.taskStats()['veo']!.maxRunning).toBeLessThanOrEqual(2);
  });
});

describe('kuberelay mock-upstream: the Volcengine key pair and task options', () => {
  it('checks signatures with the given pair and holds at most --task-max-concurrent tasks', async () => {
    await expect(
      runMockUpstreamCli({ port: 0, host: '127.0.0.1', volcengineAccessKeyId: AK }),
    ).rejects.toThrow(/go together/);
    const cli = await runMockUpstreamCli({
      port: 0,
      host: '127.0.0.1',
      volcengineAccessKeyId: AK,
      volcengineSecretAccessKey: SK,
      taskMaxConcurrent: 1,
      taskDurationMs: 60_000,
    });
    try {
      const ch = channel(
        'volcengine',
        `{ accessKeyId: ${AK}, secretAccessKey: "${SK}" }`,
        'jimeng_t2v_v30',
        cli.url,
      );
      const wrong = channel(
        'volcengine',
        `{ accessKeyId: ${AK}, secretAccessKey: bm9wZQ== }`,
        'jimeng_t2v_v30',
        cli.url,
      );
      const req: JobRequest = { kind: 'video', upstreamModel: 'jimeng_t2v_v30', prompt: 'p' };
      const call = ch.adapter.jobs!.submit(req, ch.target);
      expect((await send(wrong, call)).status).toBe(401);
      expect((await send(ch, call)).status).toBe(200);
      const second = await send(ch, call);
      expect(second.status).toBe(429);
      expect((second.body as { code: number }).code).toBe(50430);
    } finally {
      await cli.close();
    }
  });
});

describe('the relay with a volcengine channel', () => {
  it('refuses a chat request for its model with 400 unsupported_operation, sending nothing upstream', async () => {
    const yaml = `apiVersion: v1
kind: Secret
metadata: { name: volc }
stringData: { accessKeyId: ${AK}, secretAccessKey: "${SK}" }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: jimeng }
spec:
  provider: volcengine
  baseURL: ${mock.url}
  apiKeySecretRef: { name: volc }
  models: [{ name: jimeng-video, upstreamName: jimeng_vgfm_t2v_l20 }]
`;
    const h = await startHarness(yaml);
    try {
      const before = mock.stats().byPath['/'] ?? 0;
      const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const err = await client.chat.completions
        .create({ model: 'jimeng-video', messages: [{ role: 'user', content: 'hi' }] })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      const e = err as InstanceType<typeof OpenAI.BadRequestError>;
      expect(e.code).toBe('unsupported_operation');
      expect(e.param).toBe('model');
      expect(e.message).toContain('not served by provider volcengine');
      expect(mock.stats().byPath['/'] ?? 0).toBe(before);
    } finally {
      await h.close();
    }
  });
});
