import { describe, expect, it } from 'vitest';
import { objectPathFor } from '../../providers/objects.ts';

// Where each provider keeps files and batches, as its official SDK would call them.

const target = (basePath: string, azureApiVersion?: string) => ({
  baseURL: `https://example.test${basePath}`,
  basePath,
  apiKey: 'k',
  ...(azureApiVersion ? { azureApiVersion } : {}),
});

describe('object paths', () => {
  it('openai and openai-compatible: under baseURL', () => {
    for (const p of ['openai', 'openai-compatible']) {
      expect(objectPathFor(p)!(target('/v1'), '/files/file-1/content')).toBe('/v1/files/file-1/content');
    }
  });

  it('azure-openai: /openai/v1 by default, /openai?api-version= with a dated version', () => {
    const az = objectPathFor('azure-openai')!;
    expect(az(target(''), '/batches')).toBe('/openai/v1/batches');
    expect(az(target('', 'v1'), '/files/f')).toBe('/openai/v1/files/f');
    expect(az(target('', '2024-10-21'), '/files/f/content')).toBe(
      '/openai/files/f/content?api-version=2024-10-21',
    );
    expect(az(target('', '2024-10-21'), '/files?purpose=batch')).toBe(
      '/openai/files?purpose=batch&api-version=2024-10-21',
    );
  });

  it('providers without a Files API have none', () => {
    for (const p of ['anthropic', 'gemini', 'volcengine']) expect(objectPathFor(p)).toBeUndefined();
  });
});
