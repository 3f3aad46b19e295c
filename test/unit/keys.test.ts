import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type KeyRecord,
  keyProblem,
  modelAllowed,
  parseBudget,
  parseLabel,
} from '../../core/keys/api-key.ts';
import {
  displayPrefix,
  generateKeyId,
  generateSecret,
  hashesEqual,
  hashSecret,
  isWellFormedSecret,
  randomBase62,
} from '../../core/keys/secret.ts';
import { periodEnd, periodStart } from '../../core/period.ts';

describe('key secrets', () => {
  it('are sk-kr- plus 43 base62 characters, all different', () => {
    const secrets = new Set(Array.from({ length: 1000 }, generateSecret));
    expect(secrets.size).toBe(1000);
    for (const s of secrets) {
      expect(s).toMatch(/^sk-kr-[0-9A-Za-z]{43}$/);
      expect(isWellFormedSecret(s)).toBe(true);
    }
    expect(generateKeyId()).toMatch(/^key_[0-9A-Za-z]{16}$/);
  });

  it('use every base62 symbol about equally (no modulo bias)', () => {
    const counts = new Map<string, number>();
    const text = randomBase62(62 * 2000);
    for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // Each symbol expects 2000; plain `byte % 62` would give the first 8 symbols 25% more.
    let chi = 0;
    for (const c of counts.values()) chi += (c - 2000) ** 2 / 2000;
    expect(chi).toBeLessThan(110); // chi-square, 61 degrees of freedom, p ~ 0.0001
  });

  it('are stored as SHA-256 and compared in constant time; display shows only a prefix', () => {
    const s = generateSecret();
    expect(hashSecret(s)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashSecret(s)).toBe(hashSecret(s));
    expect(hashesEqual(hashSecret(s), hashSecret(s))).toBe(true);
    expect(hashesEqual(hashSecret(s), hashSecret(`${s}x`))).toBe(false);
    expect(hashesEqual(hashSecret(s), '')).toBe(false);
    expect(displayPrefix(s)).toBe(s.slice(0, 14));
  });

  it("hash to the SHA-256 hex digest of the secret's UTF-8 bytes, as createHash gives it", () => {
    const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary' }), fc.stringMatching(/^sk-kr-[0-9A-Za-z]{43}$/)),
        (s) => {
          expect(hashSecret(s)).toBe(sha256(s));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('malformed secrets are recognised without a lookup', () => {
    for (const s of [
      '',
      'sk-kr-',
      'sk-kr-short',
      `sk-kr-${'a'.repeat(44)}`,
      `sk-xx-${'a'.repeat(43)}`,
      `sk-kr-${'-'.repeat(43)}`,
    ]) {
      expect(isWellFormedSecret(s), s).toBe(false);
    }
  });
});

describe('key restrictions', () => {
  const now = Date.parse('2026-06-15T12:00:00Z');
  const key = (over: Partial<KeyRecord> = {}): KeyRecord => ({
    id: 'key_x',
    name: 'x',
    models: [],
    labels: {},
    budget: null,
    expiresAt: null,
    revokedAt: null,
    secretHash: 'h',
    secretExpiresAt: null,
    ...over,
  });

  it('revoked beats expired beats rotated out; a future time is no problem yet', () => {
    expect(keyProblem(key(), now)).toBeUndefined();
    expect(keyProblem(key({ expiresAt: now + 1, secretExpiresAt: now + 1 }), now)).toBeUndefined();
    expect(keyProblem(key({ secretExpiresAt: now }), now)?.code).toBe('api_key_rotated');
    expect(keyProblem(key({ expiresAt: now, secretExpiresAt: now }), now)?.code).toBe('api_key_expired');
    expect(keyProblem(key({ revokedAt: now - 1, expiresAt: now }), now)?.code).toBe('api_key_revoked');
    expect(keyProblem(key({ expiresAt: now - 1 }), now)?.message).toContain('2026-06-15T11:59:59.999Z');
  });

  it('an empty model list allows every model', () => {
    expect(modelAllowed(key(), 'anything')).toBe(true);
    expect(modelAllowed(key({ models: ['a'] }), 'a')).toBe(true);
    expect(modelAllowed(key({ models: ['a'] }), 'b')).toBe(false);
  });

  it('budgets and labels parse from the CLI forms, and refuse anything else', () => {
    expect(parseBudget('25/day')).toEqual({ amount: 25, period: 'day' });
    expect(parseBudget('$250.50/month')).toEqual({ amount: 250.5, period: 'month' });
    for (const bad of ['25', '0/day', '-1/day', '25/week', 'x/day'])
      expect(() => parseBudget(bad), bad).toThrow();
    expect(parseLabel('team=search')).toEqual(['team', 'search']);
    expect(parseLabel('example.com/tier=')).toEqual(['example.com/tier', '']);
    expect(() => parseLabel('=x')).toThrow();
    expect(() => parseLabel('novalue')).toThrow();
  });

  it('budget periods are UTC calendar days and months', () => {
    expect(periodStart('day', now).toISOString()).toBe('2026-06-15T00:00:00.000Z');
    expect(periodEnd('day', now).toISOString()).toBe('2026-06-16T00:00:00.000Z');
    expect(periodStart('month', now).toISOString()).toBe('2026-06-01T00:00:00.000Z');
    expect(periodEnd('month', Date.parse('2026-12-31T23:59:59Z')).toISOString()).toBe(
      '2027-01-01T00:00:00.000Z',
    );
  });
});
