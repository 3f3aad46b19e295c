import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { spliceBody } from '../../relay/body-splice.ts';

/**
 * The spliced body means what re-serialising the parsed body with the new model meant, for any
 * JSON object the client may send, written the way real clients write it (compact, indented, keys
 * in any order, escapes in keys and values); and it is the client's text itself when nothing changes.
 */

const value = fc.jsonValue({ maxDepth: 3 });
const body = fc
  .tuple(
    fc.dictionary(
      fc.string().filter((k) => k !== 'model' && k !== '__proto__'),
      value,
      { maxKeys: 6 },
    ),
    fc.string(),
    fc.nat(),
  )
  .map(([rest, model, at]) => {
    const entries = Object.entries(rest);
    entries.splice(at % (entries.length + 1), 0, ['model', model]);
    return Object.fromEntries(entries) as Record<string, unknown>;
  });

function write(o: unknown, style: number): string {
  if (style === 0) return JSON.stringify(o);
  if (style === 1) return JSON.stringify(o, null, 2);
  if (style === 2) return JSON.stringify(o, null, '\t').replaceAll('\n', '\r\n');
  // Escaped non-ASCII, as Python's json.dumps writes it by default.
  return JSON.stringify(o).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function expected(o: Record<string, unknown>, model: string, usage: boolean) {
  const out: Record<string, unknown> = { ...o, model };
  if (usage) out.stream_options = { ...((o.stream_options as object) ?? {}), include_usage: true };
  return out;
}

describe('spliceBody', () => {
  it('means the same as the parsed body renamed (and with stream usage)', () => {
    fc.assert(
      fc.property(
        body,
        fc.string(),
        fc.boolean(),
        fc.integer({ min: 0, max: 3 }),
        (o, model, usage, style) => {
          const text = write(o, style);
          const out = spliceBody(text, model, usage);
          if (out === undefined) {
            expect(usage && 'stream_options' in o).toBe(true);
            return;
          }
          expect(JSON.parse(out)).toEqual(expected(JSON.parse(text), model, usage));
        },
      ),
    );
  });

  it('is the client text itself when the model is not renamed and usage is not added', () => {
    fc.assert(
      fc.property(body, fc.integer({ min: 0, max: 3 }), (o, style) => {
        const text = write(o, style);
        expect(spliceBody(text, o.model as string, false)).toBe(text);
      }),
    );
  });

  it('leaves what it cannot be sure of to re-serialisation', () => {
    // Two model keys: JSON.parse takes the last; an upstream might take the first.
    expect(spliceBody('{"model":"a","model":"b"}', 'c', false)).toBeUndefined();
    expect(spliceBody('{"model":"a","stream_options":{"include_usage":false}}', 'a', true)).toBeUndefined();
    // An escaped key is still the model key.
    expect(JSON.parse(spliceBody('{"mod\\u0065l":"a","n":1}', 'b', false)!)).toEqual({ model: 'b', n: 1 });
    // "model" as a value (Gemini's role) and after the key: the scan tells them apart.
    expect(JSON.parse(spliceBody('{"contents":[{"role":"model"}],"model":"a"}', 'b', true)!)).toEqual({
      contents: [{ role: 'model' }],
      model: 'b',
      stream_options: { include_usage: true },
    });
    // Nested model keys are not the request's.
    expect(JSON.parse(spliceBody('{"tools":[{"model":"x"}],"model":"a"}', 'b', false)!)).toEqual({
      tools: [{ model: 'x' }],
      model: 'b',
    });
  });
});
