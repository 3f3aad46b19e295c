/**
 * Responses as OpenAI documents them (API reference examples), for billing tests: a chat
 * completion, a streamed chat completion with `stream_options.include_usage`, embeddings and a
 * gpt-image-1 generation. `usage` is what the relay must bill for each.
 */

export const chatCompletion = {
  id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
  object: 'chat.completion',
  created: 1741570283,
  model: 'gpt-4o-2024-08-06',
  choices: [
    {
      index: 0,
      message: {
        role: 'assistant',
        content:
          'The image shows a wooden boardwalk path running through a lush green field or meadow. The sky is bright blue with some scattered clouds.',
        refusal: null,
        annotations: [],
      },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: {
    prompt_tokens: 1117,
    completion_tokens: 46,
    total_tokens: 1163,
    prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 12,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  },
  service_tier: 'default',
  system_fingerprint: 'fp_fc9f1d7035',
};

export const embeddings = {
  object: 'list',
  data: [{ object: 'embedding', embedding: [0.0023064255, -0.009327292, -0.0028842222], index: 0 }],
  model: 'text-embedding-ada-002',
  usage: { prompt_tokens: 8, total_tokens: 8 },
};

export const imageGeneration = {
  created: 1713833628,
  data: [
    {
      b64_json:
        'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
    },
  ],
  usage: {
    total_tokens: 100,
    input_tokens: 50,
    output_tokens: 50,
    input_tokens_details: { text_tokens: 10, image_tokens: 40 },
  },
};

const chunkBase = {
  id: 'chatcmpl-123',
  object: 'chat.completion.chunk',
  created: 1694268190,
  model: 'gpt-4o-mini',
  system_fingerprint: 'fp_44709d6fcb',
};

/** The data of each event of a streamed chat completion with usage (before `[DONE]`). */
export const chatStream: unknown[] = [
  {
    ...chunkBase,
    choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
    usage: null,
  },
  {
    ...chunkBase,
    choices: [{ index: 0, delta: { content: 'Hello' }, logprobs: null, finish_reason: null }],
    usage: null,
  },
  {
    ...chunkBase,
    choices: [{ index: 0, delta: { content: '!' }, logprobs: null, finish_reason: null }],
    usage: null,
  },
  { ...chunkBase, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], usage: null },
  {
    ...chunkBase,
    choices: [],
    usage: {
      prompt_tokens: 9,
      completion_tokens: 12,
      total_tokens: 21,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 4 },
    },
  },
];

/** JSON with the given whitespace after `:` and `,` and around brackets (as peers format it). */
export function formatJson(v: unknown, ws: { colon: string; comma: string; inner: string }): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[${ws.inner}${v.map((x) => formatJson(x, ws)).join(`,${ws.comma}`)}${ws.inner}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  const body = entries.map(([k, x]) => `${JSON.stringify(k)}:${ws.colon}${formatJson(x, ws)}`);
  return `{${ws.inner}${body.join(`,${ws.comma}`)}${ws.inner}}`;
}
