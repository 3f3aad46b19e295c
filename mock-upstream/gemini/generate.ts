// generateContent and streamGenerateContent for the mock: deterministic text (content.ts), a
// functionCall when the request declares functions and a call is due, usageMetadata with thinking
// tokens (when a thinking budget is set) and implicit-cache hits (a repeated conversation start).
import {
  completionText,
  countWords,
  DEFAULT_COMPLETION_TOKENS,
  MAX_COMPLETION_TOKENS,
  pieceJson,
} from '../content.ts';

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function words(parts: unknown): number {
  let n = 0;
  for (const p of arr(parts)) {
    const part = obj(p);
    if (typeof part?.['text'] === 'string') n += countWords(part['text']);
    else if (part?.['functionResponse'] || part?.['functionCall']) n += countWords(JSON.stringify(part));
  }
  return n;
}

export interface Plan {
  promptTokens: number;
  cachedTokens: number;
  thoughtsTokens: number;
  /** Text tokens per candidate (0 when answering with a function call). */
  tokens: number;
  candidates: number;
  call?: { name: string; args: Json };
}

const MAX_CACHE = 1000;

/** Remembers conversation starts, as Gemini's implicit cache does, to report cached tokens. */
export class ImplicitCache {
  readonly #seen = new Set<string>();
  hit(key: string): boolean {
    if (this.#seen.has(key)) return true;
    if (this.#seen.size >= MAX_CACHE) this.#seen.clear();
    this.#seen.add(key);
    return false;
  }
}

/** Checks the body and decides the answer; a string is a 400 message. */
export function plan(b: Json, cache: ImplicitCache): Plan | string {
  const contents = arr(b['contents']);
  if (contents.length === 0) return '* GenerateContentRequest.contents: contents is not specified';
  const system = obj(b['systemInstruction']);
  let prompt = words(system?.['parts']);
  for (const c of contents) prompt += words(obj(c)?.['parts']);
  const first = words(system?.['parts']) + words(obj(contents[0])?.['parts']);
  const cached = first > 0 && cache.hit(JSON.stringify([system ?? null, contents[0]])) ? first : 0;
  const config = obj(b['generationConfig']) ?? {};
  const max = config['maxOutputTokens'];
  const tokens =
    typeof max === 'number' && max >= 1
      ? Math.min(Math.floor(max), MAX_COMPLETION_TOKENS)
      : DEFAULT_COMPLETION_TOKENS;
  const count = config['candidateCount'];
  const candidates = typeof count === 'number' && count >= 1 ? Math.min(Math.floor(count), 8) : 1;
  const budget = obj(config['thinkingConfig'])?.['thinkingBudget'];
  const out: Plan = {
    promptTokens: Math.max(prompt, 1),
    cachedTokens: cached,
    thoughtsTokens: typeof budget === 'number' && budget > 0 ? Math.min(budget, 8) : 0,
    tokens,
    candidates,
  };
  const call = dueCall(b, contents);
  if (call) {
    out.call = call;
    out.tokens = 0;
  }
  return out;
}

/**
 * A call is due when functions are declared, calling is not NONE, and the last turn is not a
 * function result (unless mode ANY, which always calls). Required string arguments get "mock".
 */
function dueCall(b: Json, contents: unknown[]): Plan['call'] {
  const declarations = arr(b['tools']).flatMap((t) => arr(obj(t)?.['functionDeclarations']));
  if (declarations.length === 0) return undefined;
  const config = obj(obj(b['toolConfig'])?.['functionCallingConfig']);
  const mode = config?.['mode'] ?? 'AUTO';
  if (mode === 'NONE') return undefined;
  const lastParts = arr(obj(contents.at(-1))?.['parts']);
  const answered = lastParts.some((p) => obj(p)?.['functionResponse'] !== undefined);
  if (answered && mode !== 'ANY') return undefined;
  const allowed = arr(config?.['allowedFunctionNames']);
  const decl =
    declarations.map(obj).find((d) => allowed.length === 0 || allowed.includes(d?.['name'])) ??
    obj(declarations[0]);
  const name = typeof decl?.['name'] === 'string' ? decl['name'] : 'unknown';
  const schema = obj(decl?.['parametersJsonSchema']) ?? obj(decl?.['parameters']);
  const args: Json = {};
  for (const key of arr(schema?.['required'])) {
    if (typeof key === 'string') args[key] = 'mock';
  }
  return { name, args };
}

function usage(p: Plan, candidateTokens: number): Json {
  const u: Json = {
    promptTokenCount: p.promptTokens,
    candidatesTokenCount: candidateTokens,
    totalTokenCount: p.promptTokens + candidateTokens + p.thoughtsTokens,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: p.promptTokens }],
  };
  if (p.thoughtsTokens > 0) u['thoughtsTokenCount'] = p.thoughtsTokens;
  if (p.cachedTokens > 0) u['cachedContentTokenCount'] = p.cachedTokens;
  return u;
}

/** Tokens of a functionCall answer, as Gemini counts the call it generated. */
const callTokens = (call: NonNullable<Plan['call']>) => Math.max(countWords(JSON.stringify(call)), 1);

const candidateTotal = (p: Plan) => (p.call ? callTokens(p.call) : p.tokens) * p.candidates;

export function wholeAnswer(p: Plan, model: string, responseId: string): string {
  const parts = p.call ? [{ functionCall: p.call }] : [{ text: completionText(p.tokens) }];
  const candidates = Array.from({ length: p.candidates }, (_, index) => ({
    content: { parts, role: 'model' },
    finishReason: 'STOP',
    index,
  }));
  return JSON.stringify({
    candidates,
    usageMetadata: usage(p, candidateTotal(p)),
    modelVersion: model,
    responseId,
  });
}

/** The SSE events of a streamed answer: one per text piece (or the call), then the finishing one. */
export function streamEvents(
  p: Plan,
  model: string,
  responseId: string,
): { count: number; piece: (i: number) => string; tail: string } {
  const event = (partsJson: string, extra: string, i: number) => {
    const cands = Array.from(
      { length: p.candidates },
      (_, index) => `{"content":{"parts":${partsJson},"role":"model"}${extra},"index":${index}}`,
    ).join(',');
    return `data: {"candidates":[${cands}],"usageMetadata":${JSON.stringify(usage(p, i * p.candidates))},"modelVersion":${JSON.stringify(model)},"responseId":"${responseId}"}\n\n`;
  };
  const total = candidateTotal(p) / p.candidates;
  const tail = event('[{"text":""}]', ',"finishReason":"STOP"', total);
  if (p.call)
    return { count: 1, piece: () => event(JSON.stringify([{ functionCall: p.call }]), '', total), tail };
  return { count: p.tokens, piece: (i) => event(`[{"text":${pieceJson(i)}}]`, '', i + 1), tail };
}
