import { stringEnd } from './json-body.ts';

/**
 * The client's JSON body as the upstream gets it, from the client's own text: as it came when
 * nothing changes, with the `model` value replaced in place when the channel renames it, and with
 * `stream_options` added when the relay asks for stream usage. Re-serialising the parsed body for
 * that costs a full JSON.stringify per request (and normalises what the client wrote: numbers,
 * escapes); splicing costs one scan of the text. Returns undefined when the text is not one the
 * splice can be sure about (two `model` keys, an existing `stream_options`): the caller then
 * serialises the parsed body, as before.
 */
export function spliceBody(text: string, upstreamModel: string, addStreamUsage: boolean): string | undefined {
  let model = soleModelKey(text, addStreamUsage);
  if (model === undefined) {
    const keys = topLevelKeys(text);
    if (keys?.model.length !== 1) return undefined;
    if (addStreamUsage && keys.streamOptions) return undefined;
    model = keys.model[0]!;
  }
  const [start, end] = model;
  let out = text;
  if (addStreamUsage) {
    const close = text.lastIndexOf('}');
    out = `${text.slice(0, close)},"stream_options":{"include_usage":true}${text.slice(close)}`;
  }
  const value = JSON.stringify(upstreamModel);
  if (text.slice(start, end) === value) return out;
  return out.slice(0, start) + value + out.slice(end);
}

/**
 * The fast path (native substring search, no scan): the body holds `"model"` once and no `\u`
 * escape, so that one is the top-level key (the parser found a top-level model, and only a `\u`
 * escape can spell a key's letters differently). undefined: take the full scan.
 */
function soleModelKey(text: string, addStreamUsage: boolean): [number, number] | undefined {
  const at = text.indexOf('"model"');
  if (at < 0 || text.indexOf('"model"', at + 7) >= 0 || text.includes('\\u')) return undefined;
  if (addStreamUsage && text.includes('"stream_options"')) return undefined;
  let j = at + 7;
  while (isSpace(text.charCodeAt(j))) j++;
  if (text.charCodeAt(j) !== 0x3a /* : */) return undefined;
  j++;
  while (isSpace(text.charCodeAt(j))) j++;
  if (text.charCodeAt(j) !== 0x22) return undefined;
  return [j, stringEnd(text, j + 1) + 1];
}

interface TopLevel {
  /** [start, end) of each top-level `model` value (a JSON string). */
  model: [number, number][];
  streamOptions: boolean;
}

/** Top-level `model` values and whether `stream_options` is there; undefined if a `model` is not a string. */
function topLevelKeys(text: string): TopLevel | undefined {
  const found: TopLevel = { model: [], streamOptions: false };
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i + 1);
      if (depth === 1 && expectKey) {
        expectKey = false;
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (key === 'stream_options') found.streamOptions = true;
        else if (key === 'model') {
          let j = end + 1;
          while (j < text.length && text.charCodeAt(j) !== 0x3a /* : */) j++;
          j++;
          while (isSpace(text.charCodeAt(j))) j++;
          if (text.charCodeAt(j) !== 0x22) return undefined;
          const vEnd = stringEnd(text, j + 1);
          found.model.push([j, vEnd + 1]);
          i = vEnd;
          continue;
        }
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return found;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
