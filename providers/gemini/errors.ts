// Gemini errors ({"error":{"code","message","status","details"}}) -> OpenAI's error shape, with the
// upstream's HTTP status kept by the caller. Retryable: 429 RESOURCE_EXHAUSTED, 500 INTERNAL,
// 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED (Google's troubleshooting guide).
import { asArray, asObject } from './json.ts';

export interface OpenAIError {
  message: string;
  type: string;
  code: string | null;
}

export function errorOf(status: number, nativeBody: unknown): OpenAIError {
  const e = asObject(asObject(nativeBody)?.['error']);
  const message =
    typeof e?.['message'] === 'string' && e['message'] !== ''
      ? e['message']
      : `Gemini answered HTTP ${status}.`;
  const grpc = typeof e?.['status'] === 'string' ? e['status'] : undefined;
  // An invalid key is a 400 INVALID_ARGUMENT at Gemini, told apart only by its ErrorInfo reason.
  const reasons = asArray(e?.['details']).map((d) => asObject(d)?.['reason']);
  if (reasons.includes('API_KEY_INVALID')) {
    return { message, type: 'authentication_error', code: 'invalid_api_key' };
  }
  return { message, type: typeOf(status), code: grpc ? grpc.toLowerCase() : null };
}

function typeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

const RETRYABLE = new Set([429, 500, 503, 504]);

export const isRetryable = (status: number): boolean => RETRYABLE.has(status);
