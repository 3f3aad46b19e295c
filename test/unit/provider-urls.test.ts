import { describe, expect, it } from 'vitest';
import type { ChannelTarget, RequestContext } from '../../providers/contract.ts';
import { adapterFor } from '../../providers/index.ts';

const ctx = (operation: RequestContext['operation'], upstreamModel = 'gpt-4o'): RequestContext => ({
  operation,
  upstreamModel,
  stream: false,
});
const target = (over: Partial<ChannelTarget> = {}): ChannelTarget => ({
  baseURL: 'https://res.openai.azure.com',
  basePath: '',
  apiKey: 'k-123',
  ...over,
});

describe('provider URLs and auth', () => {
  it('openai and openai-compatible: Bearer key, paths under baseURL', () => {
    for (const name of ['openai', 'openai-compatible']) {
      const a = adapterFor(name);
      expect(a.auth(target())).toEqual({ authorization: 'Bearer k-123' });
      expect(a.url(target({ basePath: '/v1' }), ctx('chat'))).toBe('/v1/chat/completions');
      expect(a.url(target({ basePath: '/v1' }), ctx('embeddings'))).toBe('/v1/embeddings');
      expect(a.translator('chat')).toBeUndefined();
    }
  });

  it('azure-openai v1 (the default): /openai/v1/..., api-key header', () => {
    const a = adapterFor('azure-openai');
    expect(a.auth(target())).toEqual({ 'api-key': 'k-123' });
    expect(a.url(target(), ctx('chat'))).toBe('/openai/v1/chat/completions');
    expect(a.url(target({ azureApiVersion: 'v1' }), ctx('images'))).toBe('/openai/v1/images/generations');
  });

  it('azure-openai dated version: deployment URL with api-version', () => {
    const a = adapterFor('azure-openai');
    const t = target({ azureApiVersion: '2024-10-21' });
    expect(a.url(t, ctx('chat', 'my-gpt4o'))).toBe(
      '/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21',
    );
    expect(a.url(t, ctx('embeddings', 'emb/large'))).toBe(
      '/openai/deployments/emb%2Flarge/embeddings?api-version=2024-10-21',
    );
  });

  it('the Responses API: native on openai and azure-openai (no deployment path), not on the others', () => {
    expect(adapterFor('openai').url(target({ basePath: '/v1' }), ctx('responses'))).toBe('/v1/responses');
    const az = adapterFor('azure-openai');
    expect(az.url(target(), ctx('responses', 'dep'))).toBe('/openai/v1/responses');
    expect(az.url(target({ azureApiVersion: '2025-04-01-preview' }), ctx('responses', 'dep'))).toBe(
      '/openai/responses?api-version=2025-04-01-preview',
    );
    const native = ['openai', 'openai-compatible', 'azure-openai', 'anthropic', 'gemini'].filter((p) =>
      adapterFor(p).supports('responses'),
    );
    expect(native).toEqual(['openai', 'azure-openai']);
  });

  it('an unknown provider has no adapter', () => {
    expect(() => adapterFor('nope')).toThrow(/no adapter/);
  });
});
