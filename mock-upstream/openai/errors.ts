// OpenAI's error shape and account headers, shared by the OpenAI and Azure OpenAI mock modules.
import type { ServerResponse } from 'node:http';
import type { MockHttp } from '../http.ts';

export function errorBody(message: string, type: string, code: string | null): string {
  return JSON.stringify({ error: { message, type, param: null, code } });
}

/** OpenAI-like error type/code/message for a status (injected faults and the mock's own errors). */
export function statusError(status: number): [message: string, type: string, code: string] {
  switch (status) {
    case 400:
      return ['Bad request (mock fault).', 'invalid_request_error', 'bad_request'];
    case 401:
      return ['Incorrect API key provided (mock fault).', 'invalid_request_error', 'invalid_api_key'];
    case 403:
      return ['Forbidden (mock fault).', 'invalid_request_error', 'permission_denied'];
    case 404:
      return ['Not found (mock fault).', 'invalid_request_error', 'not_found'];
    case 408:
      return ['Request timed out (mock fault).', 'timeout', 'timeout'];
    case 413:
      return ['Request body too large.', 'invalid_request_error', 'request_too_large'];
    case 429:
      return ['Rate limit reached (mock fault).', 'requests', 'rate_limit_exceeded'];
    case 500:
      return [
        'The server had an error while processing your request (mock fault).',
        'server_error',
        'server_error',
      ];
    case 502:
      return ['Bad gateway (mock fault).', 'server_error', 'bad_gateway'];
    case 503:
      return ['The engine is currently overloaded (mock fault).', 'server_error', 'service_unavailable'];
    case 504:
      return ['Gateway timeout (mock fault).', 'server_error', 'timeout'];
    default:
      return [
        `HTTP ${status} (mock fault).`,
        status >= 500 ? 'server_error' : 'invalid_request_error',
        `http_${status}`,
      ];
  }
}

/** What OpenAI adds to its answers about the account behind the key. */
export const ACCOUNT_HEADERS: Record<string, string> = {
  'openai-organization': 'org-mock-account',
  'openai-project': 'proj_mock',
  'openai-processing-ms': '1',
  'openai-version': '2020-10-01',
  'x-ratelimit-limit-requests': '10000',
  'x-ratelimit-remaining-requests': '9999',
  'set-cookie': '__cf_bm=mock; path=/; HttpOnly; Secure',
};

export function sendOpenAIError(
  m: MockHttp,
  res: ServerResponse,
  status: number,
  message: string,
  type: string,
  code: string | null,
  extra?: Record<string, string>,
): void {
  m.sendJson(res, status, errorBody(message, type, code), { ...ACCOUNT_HEADERS, ...extra });
}

export const badRequest = (m: MockHttp, res: ServerResponse, message: string, code: string | null = null) =>
  sendOpenAIError(m, res, 400, message, 'invalid_request_error', code);

/** JSON body checks every OpenAI POST endpoint makes; returns false once it answered an error. */
export function checkJsonBody(m: MockHttp, res: ServerResponse, body: unknown, badJson: boolean): boolean {
  if (badJson) {
    badRequest(
      m,
      res,
      'We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.',
      'invalid_json',
    );
    return false;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    badRequest(m, res, 'The request body must be a JSON object.', 'invalid_json');
    return false;
  }
  return true;
}
