import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechBytes } from '../../mock-upstream/openai/audio.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { memoryPacer } from '../../relay/memory-pacer.ts';
import {
  type ChannelSpec,
  configYaml,
  type Harness,
  metric,
  post,
  startHarness,
  startMocks,
} from '../helpers/harness.ts';
import { openRaw, parseResponse } from '../helpers/raw-http.ts';

// Audio, image edits, moderations and rerank through the relay with the official `openai` SDK as
// the client, against the mock in OpenAI's and Azure's (v1 and dated) shapes: uploads arrive intact
// with the channel's model name, speech bytes come back unchanged, failover replays a form, the
// body limit answers 413, and no spooled upload outlives its request.

const client = (h: Harness) => new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

const MODELS = `[{ name: whisper-1, upstreamName: whisper-up, pricing: { perSecond: "0.0001" } },
    { name: gpt-4o-transcribe, upstreamName: up-transcribe, pricing: { inputPer1M: "6", outputPer1M: "10" } },
    { name: tts-1, upstreamName: up-tts, pricing: { perCharacter: "0.000015" } },
    { name: gpt-image-1, upstreamName: gpt-image-up },
    { name: dall-e-2, upstreamName: up-dalle },
    { name: omni-moderation-latest, upstreamName: up-moderation },
    { name: bge-reranker, upstreamName: up-reranker }]`;

const KINDS: {
  kind: string;
  channel: (m: MockUpstream) => ChannelSpec;
  path: (op: string, m: string) => string;
}[] = [
  {
    kind: 'openai',
    channel: (mock) => ({ name: 'c', mock, provider: 'openai', models: MODELS }),
    path: (op) => `/v1/${op}`,
  },
  {
    kind: 'azure-openai (v1 API)',
    channel: (mock) => ({ name: 'c', baseURL: mock.url, provider: 'azure-openai', models: MODELS }),
    path: (op) => `/openai/v1/${op}`,
  },
  {
    kind: 'azure-openai (dated API)',
    channel: (mock) => ({
      name: 'c',
      baseURL: mock.url,
      provider: 'azure-openai',
      models: MODELS,
      extra: '  azure: { apiVersion: 2024-10-21 }\n',
    }),
    path: (op, model) => `/openai/deployments/${model}/${op}`,
  },
];

let spoolDir: string;
let savedTmp: string | undefined;
beforeAll(async () => {
  // The relay spools uploads under os.tmpdir(): a directory of this file's own, to see it emptied.
  spoolDir = await mkdtemp(join(tmpdir(), 'kuberelay-media-test-'));
  savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = spoolDir;
});
afterAll(async () => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  await rm(spoolDir, { recursive: true, force: true });
});
const spooled = async () => (await readdir(spoolDir)).filter((f) => f.startsWith('kuberelay-form-'));

for (const k of KINDS) {
  describe(`media endpoints, provider ${k.kind}`, () => {
    let mock: MockUpstream;
    let h: Harness;
    beforeAll(async () => {
      mock = (await startMocks(['up']))[0]!;
      h = await startHarness(configYaml([k.channel(mock)]));
    });
    afterAll(async () => {
      await h.close();
      await mock.close();
    });
    const sent = () => mock.stats().last!;

    it('audio.transcriptions.create with toFile: the file arrives intact, the model renamed', async () => {
      const audio = randomBytes(40_000);
      const r = await client(h).audio.transcriptions.create({
        file: await toFile(audio, 'speech.mp3', { type: 'audio/mpeg' }),
        model: 'whisper-1', // openai-node writes it after the file
      });
      expect(r.text).toBe(`transcribed by whisper-up: 40000 bytes, sha256 ${sha(audio)}`);
      expect(sent().path).toBe(k.path('audio/transcriptions', 'whisper-up'));
      await expect.poll(spooled).toEqual([]);
    });

    it('transcription usage is billed as reported: seconds for whisper-1, tokens for gpt-4o-transcribe', async () => {
      const before = await metric(h.url, 'kuberelay_cost_usd_total', { model: 'whisper-1' });
      const r = await client(h).audio.transcriptions.create({
        file: await toFile(randomBytes(48_000), 'a.wav'),
        model: 'whisper-1',
      });
      expect(r.usage).toEqual({ type: 'duration', seconds: 3 });
      const after = await metric(h.url, 'kuberelay_cost_usd_total', { model: 'whisper-1' });
      expect(after - before).toBeCloseTo(3 * 0.0001, 10);

      const t = await client(h).audio.transcriptions.create({
        file: await toFile(randomBytes(10_000), 'a.wav'),
        model: 'gpt-4o-transcribe',
      });
      expect(t.usage?.type).toBe('tokens');
      const u = t.usage as { input_tokens: number; output_tokens: number };
      const tokens = await metric(h.url, 'kuberelay_tokens_total', {
        model: 'gpt-4o-transcribe',
        type: 'prompt',
      });
      expect(tokens).toBe(u.input_tokens);
    });

    it('response_format text and translations answer text/plain, passed on as it came', async () => {
      const audio = randomBytes(1000);
      const text = await client(h).audio.transcriptions.create({
        file: await toFile(audio, 'a.mp3'),
        model: 'whisper-1',
        response_format: 'text',
      });
      expect(text).toBe(`transcribed by whisper-up: 1000 bytes, sha256 ${sha(audio)}\n`);
      const tr = await client(h).audio.translations.create({
        file: await toFile(audio, 'a.mp3'),
        model: 'whisper-1',
      });
      expect(tr.text).toContain(`translated by whisper-up: 1000 bytes, sha256 ${sha(audio)}`);
      expect(sent().path).toBe(k.path('audio/translations', 'whisper-up'));
    });

    it('audio.speech.create: the audio bytes intact (by hash), content type kept, billed per character', async () => {
      const input = 'The quick brown fox jumped over the lazy dog. '.repeat(20);
      const before = await metric(h.url, 'kuberelay_cost_usd_total', { model: 'tts-1' });
      const r = await client(h).audio.speech.create({
        model: 'tts-1',
        voice: 'alloy',
        input,
        response_format: 'opus',
      });
      expect(r.headers.get('content-type')).toBe('audio/opus');
      const bytes = Buffer.from(await r.arrayBuffer());
      expect(bytes.length).toBe(200 * input.length);
      expect(sha(bytes)).toBe(sha(speechBytes('up-tts', 'alloy', input, 'opus')));
      const after = await metric(h.url, 'kuberelay_cost_usd_total', { model: 'tts-1' });
      expect(after - before).toBeCloseTo(input.length * 0.000015, 10);
      expect(sent().path).toBe(k.path('audio/speech', 'up-tts'));
    });

    it('images.edit upload: the image arrives intact, a b64 image comes back', async () => {
      const png = randomBytes(5000);
      const r = await client(h).images.edit({
        image: await toFile(png, 'in.png', { type: 'image/png' }),
        prompt: 'add a hat',
        model: 'gpt-image-1',
      });
      expect(r.data?.[0]?.b64_json).toMatch(/^iVBOR/);
      expect(r.data?.[0]?.revised_prompt).toBe(
        `add a hat [1 image(s), 5000 bytes, sha256 ${sha(png)}, by gpt-image-up]`,
      );
      expect(sent().path).toBe(k.path('images/edits', 'gpt-image-up'));
    });

    if (k.kind === 'openai') {
      it('moderations.create and images.createVariation', async () => {
        const m = await client(h).moderations.create({
          model: 'omni-moderation-latest',
          input: ['I will attack', 'hello'],
        });
        expect(m.results.map((x) => x.flagged)).toEqual([true, false]);
        expect(m.model).toBe('up-moderation');
        const png = randomBytes(300);
        const v = await client(h).images.createVariation({
          image: await toFile(png, 'v.png'),
          model: 'dall-e-2',
          n: 2,
        });
        expect(v.data).toHaveLength(2);
        expect(v.data?.[0]?.revised_prompt).toContain(`sha256 ${sha(png)}, by up-dalle`);
      });
      it('the default body limit is 32 MiB (KUBERELAY_MAX_BODY_BYTES), not the old 10 MiB', async () => {
        const audio = randomBytes(12 * 1024 * 1024);
        const collections = memoryPacer.collections;
        const r = await client(h).audio.transcriptions.create({
          file: await toFile(audio, 'long.wav'),
          model: 'whisper-1',
        });
        expect(r.text).toBe(`transcribed by whisper-up: ${audio.length} bytes, sha256 ${sha(audio)}`);
        // Its chunks, read from the client and back from the spool, paced young collections
        // (relay/memory-pacer.ts), and not a byte of it changed.
        const paced = memoryPacer.collections - collections;
        expect(paced).toBeGreaterThanOrEqual(Math.floor((2 * audio.length) / memoryPacer.everyBytes));
      });
      it('a client that leaves mid-upload leaves nothing spooled, and the relay serves on', async () => {
        const c = await openRaw(h.url);
        const head = '--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\n';
        c.write(
          'POST /v1/audio/transcriptions HTTP/1.1\r\nHost: relay\r\n' +
            `Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 2000000\r\n\r\n${head}`,
        );
        c.write(Buffer.alloc(500_000));
        await expect.poll(spooled).toHaveLength(1);
        c.destroy();
        await expect.poll(spooled).toEqual([]);
        const r = await client(h).audio.transcriptions.create({
          file: await toFile(Buffer.from('ok'), 'a.mp3'),
          model: 'whisper-1',
        });
        expect(r.text).toContain('2 bytes');
      });
      it('rerank: OpenAI has none, so a clear 400 in its error shape', async () => {
        const r = await post(h.url, '/v1/rerank', { model: 'bge-reranker', query: 'q', documents: ['a'] });
        expect(r.status).toBe(400);
        expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code: 'unsupported_operation' });
        expect(r.json.error.message).toContain('/v1/rerank');
      });
    } else {
      it('moderations: Azure has none, so a clear 400 in OpenAI error shape', async () => {
        const err = await client(h)
          .moderations.create({ model: 'omni-moderation-latest', input: 'x' })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OpenAI.BadRequestError);
        expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('unsupported_operation');
      });
    }
  });
}

describe('media endpoints: rerank, failover, limits', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  beforeAll(async () => {
    mocks = await startMocks(['first', 'second']);
    h = await startHarness(
      configYaml([
        { name: 'first', mock: mocks[0], models: MODELS, priority: 0 },
        { name: 'second', mock: mocks[1], models: MODELS, priority: 1 },
      ]),
      { bodyLimit: 256 * 1024 },
    );
  });
  afterAll(async () => {
    await h.close();
    await Promise.all(mocks.map((m) => m.close()));
  });

  it('rerank via client.post: the Cohere/Jina shape vLLM serves, best first, usage billed', async () => {
    const r = await client(h).post<{
      results: { index: number; relevance_score: number; document?: { text: string } }[];
      usage: { total_tokens: number };
    }>('/rerank', {
      body: {
        model: 'bge-reranker',
        query: 'capital of France',
        documents: ['Berlin is in Germany', 'Paris is the capital of France', 'France has wine'],
        top_n: 2,
      },
    });
    expect(r.results.map((x) => x.index)).toEqual([1, 2]);
    expect(r.results[0]!.relevance_score).toBe(1);
    expect(r.results[0]!.document?.text).toBe('Paris is the capital of France');
    expect(await metric(h.url, 'kuberelay_tokens_total', { model: 'bge-reranker', type: 'prompt' })).toBe(
      r.usage.total_tokens,
    );
  });

  it('a failed attempt fails over with the same form: the next channel gets the file intact', async () => {
    mocks[0]!.setFaults({ status: 503, count: 1 });
    const audio = randomBytes(100_000);
    const res = await client(h)
      .audio.transcriptions.create({ file: await toFile(audio, 'a.mp3'), model: 'whisper-1' })
      .withResponse();
    expect(res.data.text).toBe(`transcribed by whisper-up: 100000 bytes, sha256 ${sha(audio)}`);
    expect(res.response.headers.get('x-kuberelay-channel')).toBe('default/second');
    expect(res.response.headers.get('x-kuberelay-attempts')).toBe('2');
    expect(mocks[0]!.stats().byPath['/v1/audio/transcriptions']).toBe(1);
    await expect.poll(spooled).toEqual([]);
  });

  it('the model may come last in a hand-written form, and may be missing (400)', async () => {
    const form = new FormData();
    form.append('response_format', 'json');
    form.append('file', new Blob([Buffer.from('abc')]), 'x.mp3');
    form.append('model', 'whisper-1');
    const r = await fetch(`${h.url}/v1/audio/transcriptions`, { method: 'POST', body: form });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { text: string }).text).toContain('by whisper-up: 3 bytes');

    const none = new FormData();
    none.append('file', new Blob([Buffer.from('abc')]), 'x.mp3');
    const bad = await fetch(`${h.url}/v1/audio/transcriptions`, { method: 'POST', body: none });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('missing_model');
  });

  it('a body over the limit is a 413 in OpenAI error shape, multipart or JSON, and nothing stays spooled', async () => {
    const err = await client(h)
      .audio.transcriptions.create({
        file: await toFile(randomBytes(300 * 1024), 'big.mp3'),
        model: 'whisper-1',
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(413);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('request_too_large');

    // Chunked, without a content-length to refuse it by: cut off while it streams in.
    const c = await openRaw(h.url);
    c.write(
      'POST /v1/images/edits HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n' +
        'Content-Type: multipart/form-data; boundary=xyz\r\n\r\n',
    );
    const head = '--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n';
    c.write(`${Buffer.byteLength(head).toString(16)}\r\n${head}\r\n`);
    const piece = 'a'.repeat(64 * 1024);
    for (let i = 0; i < 6; i++) c.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
    await expect.poll(() => c.received()).toContain('}');
    c.destroy();
    const cut = parseResponse(c.received());
    expect(cut.status).toBe(413);
    expect(cut.json).toMatchObject({ error: { type: 'invalid_request_error', code: 'request_too_large' } });
    const json = await post(h.url, '/v1/audio/speech', {
      model: 'tts-1',
      voice: 'alloy',
      input: 'x'.repeat(300_000),
    });
    expect(json.status).toBe(413);
    expect(json.json.error.code).toBe('request_too_large');
    await expect.poll(spooled).toEqual([]);
  });

  it('JSON to an upload route and a form to a JSON route are 415s, not upstream puzzles', async () => {
    const j = await post(h.url, '/v1/audio/transcriptions', { model: 'whisper-1', file: 'x' });
    expect(j.status).toBe(415);
    expect(j.json.error.code).toBe('unsupported_media_type');
    const form = new FormData();
    form.append('model', 'gpt-4o-mini');
    const f = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST', body: form });
    expect(f.status).toBe(415);
  });
});

describe('media endpoints: a model on channels of several providers', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  beforeAll(async () => {
    mocks = await startMocks(['claude', 'openai']);
    h = await startHarness(
      configYaml([
        // tried first, but Anthropic serves no speech: skipped without a request upstream
        {
          name: 'claude',
          baseURL: mocks[0]!.url,
          provider: 'anthropic',
          models: '[{ name: tts-1 }]',
          priority: 0,
        },
        { name: 'openai', mock: mocks[1], provider: 'openai', models: '[{ name: tts-1 }]', priority: 1 },
      ]),
    );
  });
  afterAll(async () => {
    await h.close();
    await Promise.all(mocks.map((m) => m.close()));
  });

  it('the channel whose provider serves the endpoint answers; the other never sees the request', async () => {
    const r = await client(h)
      .audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'hello' })
      .asResponse();
    expect(r.status).toBe(200);
    expect(r.headers.get('x-kuberelay-channel')).toBe('default/openai');
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(speechBytes('tts-1', 'alloy', 'hello', 'mp3')));
    expect(mocks[0]!.stats().requests).toBe(0);
  });
});
