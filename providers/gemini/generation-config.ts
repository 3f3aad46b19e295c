// OpenAI sampling, length, stop, output format and reasoning settings -> Gemini `generationConfig`.
import { asObject, isObject, type Json } from './json.ts';
import { refuse } from './refuse.ts';

/** OpenAI `reasoning_effort` -> Gemini thinking budget (tokens), as Google's OpenAI compatibility maps it. */
const THINKING_BUDGET: Record<string, number> = { none: 0, low: 1024, medium: 8192, high: 24576 };

export function generationConfig(body: Json): Json {
  const c: Json = {};
  const num = (key: string, target: string) => {
    const v = body[key];
    if (v === undefined || v === null) return;
    if (typeof v !== 'number' || !Number.isFinite(v)) refuse(key, `'${key}' must be a number.`);
    c[target] = v;
  };
  num('max_completion_tokens', 'maxOutputTokens');
  if (c['maxOutputTokens'] === undefined) num('max_tokens', 'maxOutputTokens');
  num('temperature', 'temperature');
  num('top_p', 'topP');
  num('n', 'candidateCount');
  num('seed', 'seed');
  num('presence_penalty', 'presencePenalty');
  num('frequency_penalty', 'frequencyPenalty');
  const stop = body['stop'];
  if (typeof stop === 'string') c['stopSequences'] = [stop];
  else if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) {
    if (stop.length > 0) c['stopSequences'] = stop;
  } else if (stop !== undefined && stop !== null)
    refuse('stop', "'stop' must be a string or an array of strings.");
  responseFormat(body['response_format'], c);
  const effort = body['reasoning_effort'];
  if (effort !== undefined && effort !== null) {
    const budget = typeof effort === 'string' ? THINKING_BUDGET[effort] : undefined;
    if (budget === undefined) {
      refuse('reasoning_effort', "'reasoning_effort' must be none, low, medium or high for gemini channels.");
    }
    c['thinkingConfig'] = { thinkingBudget: budget };
  }
  return c;
}

function responseFormat(format: unknown, c: Json) {
  if (format === undefined || format === null) return;
  const f = asObject(format);
  const type = f?.['type'];
  if (type === 'text') return;
  if (type === 'json_object') {
    c['responseMimeType'] = 'application/json';
    return;
  }
  if (type === 'json_schema') {
    const schema = asObject(f?.['json_schema'])?.['schema'];
    if (!isObject(schema)) refuse('response_format.json_schema.schema', 'A JSON schema object is required.');
    c['responseMimeType'] = 'application/json';
    // JSON Schema as given (Gemini's responseJsonSchema): no lossy conversion to its OpenAPI subset.
    c['responseJsonSchema'] = schema;
    return;
  }
  refuse('response_format.type', "'response_format.type' must be text, json_object or json_schema.");
}
