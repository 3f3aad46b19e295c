/** Anthropic's error types (docs: https://docs.anthropic.com/en/api/errors) in OpenAI's terms. */
const TYPES: Record<string, string> = {
  invalid_request_error: 'invalid_request_error',
  authentication_error: 'authentication_error',
  permission_error: 'permission_error',
  not_found_error: 'not_found_error',
  request_too_large: 'invalid_request_error',
  rate_limit_error: 'rate_limit_error',
  api_error: 'server_error',
  overloaded_error: 'server_error',
  timeout_error: 'server_error',
};

export interface NormalisedError {
  message: string;
  type: string;
  code: string;
}

/**
 * `{"type":"error","error":{"type","message"}}` -> OpenAI's `{message, type, code}`; the code is
 * Anthropic's own error type, so clients can still tell `overloaded_error` from `api_error`.
 * A body that is not Anthropic's shape (a proxy's HTML page) gets a message from the status.
 */
export function errorOf(status: number, body: unknown): NormalisedError {
  const e = (body as { error?: { type?: unknown; message?: unknown } } | null)?.error;
  const native = typeof e?.type === 'string' ? e.type : undefined;
  const message =
    typeof e?.message === 'string' && e.message !== '' ? e.message : `the upstream answered HTTP ${status}`;
  const type =
    (native && TYPES[native]) ??
    (status >= 500 ? 'server_error' : status === 429 ? 'rate_limit_error' : 'invalid_request_error');
  return { message, type, code: native ?? `http_${status}` };
}
