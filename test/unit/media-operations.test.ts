import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { costOf, usageFromJsonBody, usageFromOpenAI } from '../../core/usage.ts';
import type { MediaOperation } from '../../providers/contract.ts';
import { adapterFor } from '../../providers/index.ts';
import { maxBodyBytesFromEnv } from '../../relay/body-limit.ts';

// The media operations: which provider serves which, at what URL; how their usage is read and
// priced (audio seconds or tokens as the upstream reports, speech per character); the body limit.

const MEDIA: MediaOperation[] = [
  'transcriptions',
  'translations',
  'speech',
  'moderations',
  'image_edits',
  'image_variations',
  'rerank',
];
const target = (azureApiVersion?: string) => ({
  baseURL: 'https://x',
  basePath: '/v1',
  apiKey: 'k',
  ...(azureApiVersion && { azureApiVersion }),
});
const ctx = (operation: MediaOperation) => ({ operation, upstreamModel: 'dep 1', stream: false });

describe('media operations per provider', () => {
  it('openai serves all but rerank; openai-compatible (vLLM) all; azure audio, speech and edits; the rest none', () => {
    const served = (p: string) => MEDIA.filter((op) => adapterFor(p).supports(op));
    expect(served('openai')).toEqual(MEDIA.filter((op) => op !== 'rerank'));
    expect(served('openai-compatible')).toEqual(MEDIA);
    expect(served('azure-openai')).toEqual(['transcriptions', 'translations', 'speech', 'image_edits']);
    expect(served('anthropic')).toEqual([]);
    expect(served('gemini')).toEqual([]);
  });

  it('URLs: OpenAI paths under baseURL, Azure v1 and dated deployment forms', () => {
    expect(adapterFor('openai').url(target(), ctx('transcriptions'))).toBe('/v1/audio/transcriptions');
    expect(adapterFor('openai-compatible').url(target(), ctx('rerank'))).toBe('/v1/rerank');
    expect(adapterFor('openai').url(target(), ctx('image_variations'))).toBe('/v1/images/variations');
    const azure = adapterFor('azure-openai');
    expect(azure.url({ ...target(), basePath: '' }, ctx('speech'))).toBe('/openai/v1/audio/speech');
    expect(azure.url({ ...target('2025-04-01-preview'), basePath: '' }, ctx('image_edits'))).toBe(
      '/openai/deployments/dep%201/images/edits?api-version=2025-04-01-preview',
    );
  });
});

const pricing = { inputPer1M: 6, outputPer1M: 10, cachedInputPer1M: 6, perRequest: 0, perSecond: 0.0001 };

describe('media usage and pricing', () => {
  it('transcription usage as OpenAI documents it: duration in seconds, or audio and text tokens', () => {
    const duration = usageFromJsonBody(Buffer.from('{"text":"hi","usage":{"type":"duration","seconds":9}}'));
    expect(duration).toMatchObject({ seconds: 9, promptTokens: 0, estimated: false });
    // billed by the audio's seconds, not by how long the request took
    expect(costOf(duration!, pricing, 60_000)).toBeCloseTo(0.0009, 12);
    const tokens = usageFromJsonBody(
      Buffer.from(
        '{"text":"hi","usage":{"type":"tokens","input_tokens":14,"input_token_details":{"text_tokens":0,"audio_tokens":14},"output_tokens":45,"total_tokens":59}}',
      ),
    );
    expect(tokens).toMatchObject({ promptTokens: 14, completionTokens: 45 });
    expect(tokens!.seconds).toBeUndefined();
  });

  it('rerank reports only total_tokens: all of it input', () => {
    expect(usageFromOpenAI({ total_tokens: 37 })).toMatchObject({ promptTokens: 37, completionTokens: 0 });
    // chat-style usage keeps reading prompt_tokens, never total_tokens
    expect(usageFromOpenAI({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })).toMatchObject({
      promptTokens: 3,
      completionTokens: 4,
    });
  });

  it('speech is billed per character, whatever the request took', () => {
    fc.assert(
      fc.property(fc.nat({ max: 100_000 }), fc.nat({ max: 600_000 }), (characters, ms) => {
        const usage = {
          promptTokens: 0,
          completionTokens: 0,
          cachedTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
          characters,
          seconds: 0,
          estimated: false,
        };
        const p = { ...pricing, perSecond: 0, perCharacter: 0.000015 };
        expect(costOf(usage, p, ms)).toBeCloseTo(characters * 0.000015, 9);
      }),
    );
  });
});

describe('KUBERELAY_MAX_BODY_BYTES', () => {
  it('defaults to 32 MiB, takes a byte count, refuses anything else by name', () => {
    expect(maxBodyBytesFromEnv(undefined)).toBe(32 * 1024 * 1024);
    expect(maxBodyBytesFromEnv('1048576')).toBe(1048576);
    for (const bad of ['32MiB', '-1', '10', '1e9']) {
      expect(() => maxBodyBytesFromEnv(bad)).toThrow(/KUBERELAY_MAX_BODY_BYTES/);
    }
  });
});
