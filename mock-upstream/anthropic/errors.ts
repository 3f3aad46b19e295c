// Anthropic's error shape (https://docs.anthropic.com/en/api/errors):
// {"type":"error","error":{"type":"...","message":"..."}} with a `request-id` header.
import type { ServerResponse } from 'node:http';
import type { MockHttp } from '../http.ts';

/** The documented error type of each status. */
export function errorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

const MESSAGES: Record<string, string> = {
  authentication_error: 'invalid x-api-key',
  not_found_error: 'Not found',
  rate_limit_error: 'Number of request tokens has exceeded your per-minute rate limit (mock fault).',
  overloaded_error: 'Overloaded',
  api_error: 'Internal server error',
};

export function sendAnthropicError(
  m: MockHttp,
  res: ServerResponse,
  status: number,
  message?: string,
  headers?: Record<string, string>,
) {
  const type = errorType(status);
  const body = {
    type: 'error',
    error: { type, message: message ?? MESSAGES[type] ?? `HTTP ${status} (mock fault)` },
  };
  m.sendJson(res, status, JSON.stringify(body), { 'request-id': `req_mock${m.nextId()}`, ...headers });
}
