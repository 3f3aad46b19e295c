import { describe, expect, it } from 'vitest';
import { costOf, usageFromJsonBody } from '../../core/usage.ts';

const body = (o: unknown) => Buffer.from(JSON.stringify(o, null, 0));

describe('usage from response bodies', () => {
  it('reads the trailing usage object, nested details included', () => {
    const b = body({
      object: 'chat.completion',
      choices: [{ message: { content: 'a "usage": {"prompt_tokens": 999} lookalike in text }{' } }],
      usage: { prompt_tokens: 12, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 4 } },
    });
    expect(usageFromJsonBody(b)).toEqual({
      promptTokens: 12,
      completionTokens: 5,
      cachedTokens: 4,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      estimated: false,
    });
  });

  it('agrees with a full parse on pretty-printed bodies and embeddings', () => {
    const emb = {
      data: [{ embedding: Array.from({ length: 1536 }, (_, i) => i / 1536) }],
      usage: { prompt_tokens: 8, total_tokens: 8 },
    };
    expect(usageFromJsonBody(Buffer.from(JSON.stringify(emb, null, 2)))).toMatchObject({
      promptTokens: 8,
      completionTokens: 0,
    });
  });

  it('falls back to a full parse, and gives nothing for bodies without usage or not JSON', () => {
    expect(usageFromJsonBody(body({ usage: null, data: [] }))).toBeUndefined();
    expect(usageFromJsonBody(Buffer.from('<html>bad gateway</html>'))).toBeUndefined();
    expect(usageFromJsonBody(Buffer.from('{"usage": {"prompt_tokens": 3'))).toBeUndefined();
  });

  it('prices cached prompt tokens at their own rate', () => {
    const p = { inputPer1M: 2, outputPer1M: 8, cachedInputPer1M: 0.5, perRequest: 0.01, perSecond: 0 };
    expect(
      costOf(
        {
          promptTokens: 1_000_000,
          completionTokens: 500_000,
          cachedTokens: 400_000,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
          estimated: false,
        },
        p,
        0,
      ),
    ).toBeCloseTo(1.2 + 0.2 + 4 + 0.01, 10);
  });
});
