// The Anthropic Messages API: POST /v1/messages (JSON or SSE events as documented),
// POST /v1/messages/count_tokens; the key (`x-api-key` or Bearer) and `anthropic-version` checked; Anthropic's error
// shape for auth failures, bad requests and injected status faults.
import type { MockApi, MockHandler } from '../api.ts';
import { sendAnthropicError } from './errors.ts';
import { countTokens, messages, PromptCache } from './messages.ts';

const check =
  (op: MockHandler): MockHandler =>
  (m, res, r) => {
    if (!r.req.headers['anthropic-version']) {
      return sendAnthropicError(m, res, 400, 'anthropic-version: header is required');
    }
    if (r.badJson || r.body === null || typeof r.body !== 'object' || Array.isArray(r.body)) {
      return sendAnthropicError(m, res, 400, 'There was an error parsing the body of your request.');
    }
    op(m, res, r);
  };

/** One instance's API (its own prompt cache). */
export function anthropicApi(): MockApi {
  const cache = new PromptCache();
  const posts: Record<string, MockHandler> = {
    '/v1/messages': check((m, res, r) => messages(m, res, r, cache)),
    '/v1/messages/count_tokens': check(countTokens),
  };
  return {
    name: 'anthropic',
    owns: (path) => path === '/v1/messages' || path.startsWith('/v1/messages/'),
    match: (method, path) => (method === 'POST' ? posts[path] : undefined),
    // `x-api-key` (what the relay sends, with anthropic-version 2023-06-01) or the Bearer form the
    // official SDK sends since API version 2026-10-21: the API takes either.
    authorized: (r, apiKey) =>
      r.req.headers['x-api-key'] === apiKey || r.req.headers.authorization === `Bearer ${apiKey}`,
    sendError(m, res, status, message, opts) {
      const auth = status === 401 && opts?.code === 'invalid_api_key';
      sendAnthropicError(m, res, status, auth ? 'invalid x-api-key' : message, opts?.headers);
    },
  };
}
