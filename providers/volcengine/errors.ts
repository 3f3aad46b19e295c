// Volcengine's two error shapes -> OpenAI's error object:
// - the visual API's own: {"code": 50413, "message": "...", "request_id", "status", "data": null}
//   (code 10000 is success; the Jimeng/Seedance docs' error table lists the codes below);
// - the OpenAPI gateway's, for auth and routing: {"ResponseMetadata": {"Error": {"Code", "CodeN",
//   "Message"}}} (the common error codes: SignatureDoesNotMatch 100010, InvalidAccessKey 100009, ...).
import type { CanonicalError } from '../contract.ts';

export const SUCCESS = 10000;

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;

/** Content moderation refused the input or the output (text, image, copyright). */
const MODERATION = new Set([50411, 50412, 50413, 50511, 50512, 50513, 50518, 50519]);
/** QPS (50429) and concurrency (50430) limits, internal errors (50500, 50501): try again later. */
const TRANSIENT = new Set([50429, 50430, 50500, 50501]);

const GATEWAY_AUTH = new Set([
  'SignatureDoesNotMatch',
  'InvalidAccessKey',
  'MissingAuthenticationToken',
  'MissingSignature',
  'InvalidTimestamp',
]);

/** The visual API's business code of a body, when it has one. */
export function businessCode(native: unknown): number | undefined {
  const c = obj(native)?.['code'];
  return typeof c === 'number' ? c : undefined;
}

export function isTransientCode(code: number): boolean {
  return TRANSIENT.has(code);
}

export function errorOf(status: number, native: unknown): CanonicalError {
  const body = obj(native);
  const gateway = obj(obj(body?.['ResponseMetadata'])?.['Error']);
  if (gateway) {
    const code = typeof gateway['Code'] === 'string' ? gateway['Code'] : undefined;
    const message =
      typeof gateway['Message'] === 'string' && gateway['Message'] !== ''
        ? gateway['Message']
        : `Volcengine answered HTTP ${status}.`;
    if (code && GATEWAY_AUTH.has(code))
      return { message, type: 'authentication_error', code: 'invalid_api_key' };
    if (code === 'AccessDenied' || status === 403)
      return { message, type: 'permission_error', code: code ?? null };
    return { message, type: typeOf(status), code: code ?? null };
  }
  const code = businessCode(body);
  const message =
    typeof body?.['message'] === 'string' && body['message'] !== ''
      ? body['message']
      : `Volcengine answered HTTP ${status}${code === undefined ? '' : ` (code ${code})`}.`;
  if (code === undefined) return { message, type: typeOf(status), code: null };
  if (MODERATION.has(code))
    return { message, type: 'invalid_request_error', code: 'content_policy_violation' };
  if (code === 50429) return { message, type: 'rate_limit_error', code: 'rate_limit_exceeded' };
  if (code === 50430) return { message, type: 'rate_limit_error', code: 'concurrency_limit_exceeded' };
  if (code === 50500 || code === 50501) return { message, type: 'server_error', code: 'upstream_error' };
  return { message, type: typeOf(status), code: `volcengine_${code}` };
}

function typeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}
