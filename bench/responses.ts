// In-process cost of the Responses API's own work on the request path, per request, in
// microseconds: the translation through chat completions (request, and the answer back to a
// Responses object), a translated stream (chat chunks -> Responses events, SSE parsed and framed)
// and a native stream passed through (parsed for its id, end and usage). No network: the relay's
// HTTP costs are bench/translate.ts's and bench/run.ts's.
//
//   node bench/responses.ts              a few seconds; markdown on stdout
//   node bench/responses.ts --quick      a short smoke run, figures not meaningful

import { parseArgs } from 'node:util';
import { TranslatedStream } from '../relay/client-stream.ts';
import { NativeResponsesStream } from '../relay/ingress/responses/native-stream.ts';
import { responsesToChat } from '../relay/ingress/responses/request.ts';
import { chatToResponse } from '../relay/ingress/responses/response.ts';
import { ChatChunks, ResponsesFromChatStream } from '../relay/ingress/responses/via-chat.ts';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' } } });
const N = args.quick ? 1000 : 50_000;
const WORDS = 'This is a mock response from the kuberelay mock upstream.'.split(/(?= )/);

const request = {
  model: 'claude',
  instructions: 'You are a helpful assistant.',
  input: [{ role: 'user', content: [{ type: 'input_text', text: 'Say hello to the relay' }] }],
  max_output_tokens: 8,
};
const chat = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1741570283,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: WORDS.join('') }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 8, total_tokens: 17 },
};
const chunk = (delta: unknown, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const chatSse = Buffer.from(
  [
    chunk({ role: 'assistant', content: '' }),
    ...WORDS.map((w) => chunk({ content: w })),
    chunk({}, 'stop'),
    `data: ${JSON.stringify({ id: 'c', choices: [], usage: chat.usage })}\n\n`,
    'data: [DONE]\n\n',
  ].join(''),
);
const ev = (type: string, f: object, i: number) =>
  `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: i, ...f })}\n\n`;
const resp = { id: 'resp_1', object: 'response', status: 'in_progress', output: [], usage: null };
const nativeSse = Buffer.from(
  [
    ev('response.created', { response: resp }, 0),
    ev('response.in_progress', { response: resp }, 1),
    ...WORDS.map((w, i) =>
      ev(
        'response.output_text.delta',
        { item_id: 'msg_1', output_index: 0, content_index: 0, delta: w },
        i + 2,
      ),
    ),
    ev(
      'response.completed',
      { response: { ...resp, status: 'completed', usage: { input_tokens: 9, output_tokens: 8 } } },
      20,
    ),
  ].join(''),
);

function time(fn: () => void): number {
  for (let i = 0; i < N / 10; i++) fn(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < N; i++) fn();
  return ((performance.now() - t0) * 1000) / N;
}

const json = time(() => {
  JSON.stringify(responsesToChat(request));
  JSON.stringify(chatToResponse(JSON.parse(JSON.stringify(chat)), { model: 'claude', request }));
});
const translated = time(() => {
  const s = new TranslatedStream(new ResponsesFromChatStream(new ChatChunks(), { model: 'claude', request }));
  s.push(chatSse);
  s.finish();
});
const native = time(() => {
  const s = new NativeResponsesStream();
  s.push(nativeSse);
  s.finish();
});

console.log(`| work (${WORDS.length} content deltas) | µs per request |
| --- | --- |
| translated JSON: request to chat + chat answer to a Responses object | ${json.toFixed(1)} |
| translated stream: chat SSE -> Responses events | ${translated.toFixed(1)} |
| native stream passed through (id, end, usage read) | ${native.toFixed(1)} |`);
