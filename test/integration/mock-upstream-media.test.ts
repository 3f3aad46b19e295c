import { createHash, randomBytes } from 'node:crypto';
import OpenAI, { AzureOpenAI, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';

// The mock's media endpoints, called directly with the official SDK (the peer whose requests they
// must accept): transcripts in every response_format, speech formats, image edits, moderations,
// rerank, and the shared faults on an upload route.

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('mock upstream: media endpoints', () => {
  let mock: MockUpstream;
  let client: OpenAI;
  beforeAll(async () => {
    mock = await startMockUpstream({ name: 'media', apiKey: 'k' });
    client = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'k', maxRetries: 0 });
  });
  afterAll(() => mock.close());

  it('transcriptions in each response_format, with usage as OpenAI documents it', async () => {
    const audio = randomBytes(33_000);
    const file = () => toFile(audio, 'a.mp3', { type: 'audio/mpeg' });
    const text = `transcribed by whisper-1: 33000 bytes, sha256 ${sha(audio)}`;
    const json = await client.audio.transcriptions.create({ file: await file(), model: 'whisper-1' });
    expect(json).toEqual({ text, usage: { type: 'duration', seconds: 3 } });
    const verbose = await client.audio.transcriptions.create({
      file: await file(),
      model: 'whisper-1',
      response_format: 'verbose_json',
    });
    expect(verbose).toMatchObject({ task: 'transcribe', duration: 3, text, segments: [{ id: 0, text }] });
    expect(
      await client.audio.transcriptions.create({
        file: await file(),
        model: 'whisper-1',
        response_format: 'text',
      }),
    ).toBe(`${text}\n`);
    const srt = await client.audio.transcriptions.create({
      file: await file(),
      model: 'whisper-1',
      response_format: 'srt',
    });
    expect(srt).toMatch(/^1\n00:00:00,000 --> /);
    const vtt = await client.audio.transcriptions.create({
      file: await file(),
      model: 'whisper-1',
      response_format: 'vtt',
    });
    expect(vtt).toMatch(/^WEBVTT\n/);
    const tokens = await client.audio.transcriptions.create({
      file: await file(),
      model: 'gpt-4o-transcribe',
    });
    expect(tokens.usage).toMatchObject({
      type: 'tokens',
      input_tokens: expect.any(Number),
      output_tokens: expect.any(Number),
    });
  });

  it('speech: deterministic bytes per request, content type per format; a missing voice is a 400', async () => {
    const a = Buffer.from(
      await (
        await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'hi there' })
      ).arrayBuffer(),
    );
    const b = Buffer.from(
      await (
        await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'hi there' })
      ).arrayBuffer(),
    );
    const c = await client.audio.speech.create({
      model: 'tts-1',
      voice: 'echo',
      input: 'hi there',
      response_format: 'wav',
    });
    expect(a.equals(b)).toBe(true);
    expect(a.length).toBe(200 * 'hi there'.length);
    expect(c.headers.get('content-type')).toBe('audio/wav');
    expect(Buffer.from(await c.arrayBuffer()).equals(a)).toBe(false);
    const err = await client.audio.speech
      .create({ model: 'tts-1', input: 'x' } as unknown as OpenAI.Audio.SpeechCreateParams)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('image edits with several images, and variations', async () => {
    const imgs = [randomBytes(100), randomBytes(200)];
    const r = await client.images.edit({
      image: await Promise.all(imgs.map((b, i) => toFile(b, `${i}.png`, { type: 'image/png' }))),
      prompt: 'merge',
      model: 'gpt-image-1',
    });
    expect(r.data?.[0]?.revised_prompt).toContain(
      `2 image(s), 300 bytes, sha256 ${sha(Buffer.concat(imgs))}`,
    );
    expect(r.usage?.input_tokens).toBeGreaterThan(0);
    const v = await client.images.createVariation({
      image: await toFile(imgs[0]!, 'v.png'),
      response_format: 'b64_json',
    });
    expect(v.data?.[0]?.b64_json).toMatch(/^iVBOR/);
  });

  it('moderations and rerank', async () => {
    const m = await client.moderations.create({ input: 'they attack at dawn' });
    expect(m.results[0]).toMatchObject({ flagged: true, categories: { violence: true, hate: false } });
    const r = await client.post<{ results: { index: number; document?: unknown }[] }>('/rerank', {
      body: {
        model: 'bge',
        query: 'red apple',
        documents: ['green pear', 'red apple pie', 'apple'],
        return_documents: false,
      },
    });
    expect(r.results.map((x) => x.index)).toEqual([1, 2, 0]);
    expect(r.results[0]!.document).toBeUndefined();
  });

  it('faults apply to uploads as to any request (x-mock-status)', async () => {
    const err = await client.audio.transcriptions
      .create(
        { file: await toFile(Buffer.from('x'), 'a.mp3'), model: 'whisper-1' },
        { headers: { 'x-mock-status': '503' } },
      )
      .catch((e: unknown) => e);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
  });

  it('Azure: dated deployment URL for transcriptions (AzureOpenAI SDK client)', async () => {
    const az = new AzureOpenAI({
      endpoint: mock.url,
      apiKey: 'k',
      apiVersion: '2024-10-21',
      deployment: 'my-whisper',
      maxRetries: 0,
    });
    const audio = randomBytes(500);
    // the mock's Azure routes check the `api-key` header; the instance key is the same string
    const r = await az.audio.transcriptions.create({ file: await toFile(audio, 'a.mp3'), model: 'ignored' });
    expect(r.text).toBe(`transcribed by my-whisper: 500 bytes, sha256 ${sha(audio)}`);
    expect(mock.stats().last!.path).toBe('/openai/deployments/my-whisper/audio/transcriptions');
  });
});
