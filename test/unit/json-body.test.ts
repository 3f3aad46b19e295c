import fc from 'fast-check';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HTTP_TIMEOUTS, httpTimeoutsFromEnv } from '../../relay/http-timeouts.ts';
import { installJsonParser, MAX_JSON_DEPTH, nestsDeeperThan, scanJson } from '../../relay/json-body.ts';

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

describe('the JSON body parser', () => {
  // JSON text as clients write it: keys that poison prototypes among ordinary ones, any character
  // possibly written as a \u escape (either hex case), varied spacing, nested objects.
  const escapeSome = (s: string, mask: boolean[], upper: boolean) =>
    [...s]
      .map((c, i) => {
        if (!mask[i % mask.length]) return c === '"' || c === '\\' ? `\\${c}` : c;
        const hex = c.charCodeAt(0).toString(16).padStart(4, '0');
        return `\\u${upper ? hex.toUpperCase() : hex}`;
      })
      .join('');
  const key = fc
    .tuple(
      fc.constantFrom('__proto__', 'constructor', 'prototype', 'model', 'messages', 'é', '_', 'proto', ''),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }),
      fc.boolean(),
    )
    .map(([k, mask, upper]) => `"${escapeSome(k, mask, upper)}"`);
  const space = fc.constantFrom('', ' ', '\n', '\r\n', '\t');
  const text: fc.Arbitrary<string> = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.json(),
      fc
        .array(fc.tuple(key, space, tie('value')), { maxLength: 4 })
        .map((es) => `{${es.map(([k, sp, v]) => `${k}${sp}:${sp}${v}`).join(',')}}`),
    ),
  })).value as fc.Arbitrary<string>;

  it("text the scan calls plain cannot poison: Fastify's parser would return what JSON.parse does", () => {
    const secure = Fastify().getDefaultJsonParser('error', 'error');
    const parse = (t: string) => {
      let out: { err: Error | null; value?: unknown } | undefined;
      secure({} as never, t, (err, value) => {
        out = { err, value };
      });
      return out!;
    };
    fc.assert(
      fc.property(text, (t) => {
        if (scanJson(t, MAX_JSON_DEPTH) !== 'plain') return;
        expect(parse(t)).toEqual({ err: null, value: JSON.parse(t) });
      }),
      { numRuns: 2000 },
    );
  });

  it("answers every body as Fastify's own parser does: the same value, or the same error", async () => {
    const echo = async (install: boolean) => {
      const app = Fastify();
      if (install) installJsonParser(app);
      app.post('/', async (req) => ({ body: req.body === undefined ? 'undefined' : req.body }));
      await app.ready();
      return app;
    };
    const [ours, theirs] = await Promise.all([echo(true), echo(false)]);
    const ask = async (app: Awaited<ReturnType<typeof echo>>, payload: string) => {
      const r = await app.inject({
        method: 'POST',
        url: '/',
        headers: { 'content-type': 'application/json' },
        payload,
      });
      return { status: r.statusCode, body: r.body };
    };
    const fixed = [
      '{"__proto__":{"admin":true}}',
      '{"a":{"constructor":{"prototype":{"admin":true}}}}',
      '{"\\u005f_proto__":{}}',
      '{"_\\u005Fproto__" : {}}',
      '{"constructor":1}',
      '\uFEFF{"model":"gpt-4o-mini"}',
      '',
      '{"model":',
      '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"caf\\u00e9"}]}',
      '[1,2]',
      '"text"',
    ];
    try {
      for (const t of fixed) expect(await ask(ours, t), t).toEqual(await ask(theirs, t));
      await fc.assert(
        fc.asyncProperty(text, async (t) => {
          expect(await ask(ours, t)).toEqual(await ask(theirs, t));
        }),
        { numRuns: 300 },
      );
    } finally {
      await Promise.all([ours.close(), theirs.close()]);
    }
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
