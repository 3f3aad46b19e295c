import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HTTP_TIMEOUTS, httpTimeoutsFromEnv } from '../../relay/http-timeouts.ts';
import { nestsDeeperThan } from '../../relay/json-body.ts';

/** Nesting depth of a parsed JSON value (arrays and objects). */
function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf));
  if (v !== null && typeof v === 'object') return 1 + Math.max(0, ...Object.values(v).map(depthOf));
  return 0;
}

describe('nestsDeeperThan', () => {
  // Strings full of brackets, quotes and backslashes must not count; JSON spacing varies.
  const tricky = fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', 'a', ' ', '\n') });
  const value = fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      tricky,
      fc.integer(),
      fc.constant(null),
      fc.array(tie('node'), { maxLength: 3 }),
      fc.dictionary(tricky, tie('node'), { maxKeys: 3 }),
    ),
  })).node;

  it('agrees with the depth of the parsed value, for any spacing and any string content', () => {
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 8 }), fc.constantFrom(0, 1, 2), (v, max, indent) => {
        const text = JSON.stringify(v, null, indent);
        expect(nestsDeeperThan(text, max)).toBe(depthOf(JSON.parse(text)) > max);
      }),
    );
  });

  it('scans 100k-deep input without recursion', () => {
    expect(nestsDeeperThan('['.repeat(100_000) + ']'.repeat(100_000), 128)).toBe(true);
    expect(nestsDeeperThan(`"${'['.repeat(100_000)}"`, 128)).toBe(false);
  });
});

describe('HTTP timeouts from the environment', () => {
  it('defaults bound headers and the whole request well under a minute and a half', () => {
    const t = httpTimeoutsFromEnv({});
    expect(t).toEqual(DEFAULT_HTTP_TIMEOUTS);
    expect(t.headersMs + t.checkIntervalMs).toBeLessThanOrEqual(15_000);
    expect(t.requestMs).toBeGreaterThan(t.headersMs);
    expect(t.requestMs).toBeLessThanOrEqual(60_000);
  });

  it('reads each variable and refuses nonsense with the variable named', () => {
    expect(
      httpTimeoutsFromEnv({
        KUBERELAY_HEADERS_TIMEOUT_MS: '2000',
        KUBERELAY_REQUEST_TIMEOUT_MS: '300000',
        KUBERELAY_KEEPALIVE_TIMEOUT_MS: '5000',
      }),
    ).toMatchObject({ headersMs: 2000, requestMs: 300_000, keepAliveMs: 5000 });
    expect(() => httpTimeoutsFromEnv({ KUBERELAY_REQUEST_TIMEOUT_MS: '0' })).toThrow(
      /KUBERELAY_REQUEST_TIMEOUT_MS/,
    );
    expect(() => httpTimeoutsFromEnv({ KUBERELAY_HEADERS_TIMEOUT_MS: '1m' })).toThrow(/milliseconds/);
    expect(() =>
      httpTimeoutsFromEnv({ KUBERELAY_HEADERS_TIMEOUT_MS: '90000', KUBERELAY_REQUEST_TIMEOUT_MS: '60000' }),
    ).toThrow(/must not exceed/);
  });
});
