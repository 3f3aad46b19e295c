// Volcengine's error bodies, as the mock answers them: the OpenAPI gateway's
// `{"ResponseMetadata": {..., "Error": {"CodeN", "Code", "Message"}}}` (common error codes of
// Volcengine/BytePlus OpenAPI) and the visual API's `{"code", "message", "request_id", "status"}`.
import { randomBytes } from 'node:crypto';

export const requestId = (): string =>
  new Date().toISOString().replace(/\D/g, '').slice(0, 14) + randomBytes(9).toString('hex').toUpperCase();

/** Gateway errors: [HTTP status, CodeN, message]. */
export const GATEWAY = {
  MissingAuthenticationToken: [401, 100003, 'Request is missing Authentication Token.'],
  InvalidTimestamp: [400, 100006, 'The signature of the request is expired.'],
  InvalidActionOrVersion: [404, 100008, 'Could not find operation %s for version %s.'],
  InvalidAccessKey: [401, 100009, 'The accesskey [%s] included in the request is invalid.'],
  SignatureDoesNotMatch: [
    401,
    100010,
    'The request signature we calculated does not match the signature you provided. Check your Secret Access Key and signing method. Consult the service documentation for details.',
  ],
} as const satisfies Record<string, readonly [number, number, string]>;

export type GatewayCode = keyof typeof GATEWAY;

export function gatewayError(code: GatewayCode, action: string, ...args: string[]): [number, string] {
  const [status, codeN, template] = GATEWAY[code];
  let message: string = template;
  for (const a of args) message = message.replace('%s', a);
  const body = {
    ResponseMetadata: {
      RequestId: requestId(),
      Action: action,
      Version: '2022-08-31',
      Service: 'cv',
      Region: 'cn-north-1',
      Error: { CodeN: codeN, Code: code, Message: message },
    },
  };
  return [status, JSON.stringify(body)];
}

/** Visual API business errors: code -> [HTTP status, message] (the Jimeng docs' error table). */
export const BUSINESS: Readonly<Record<number, readonly [number, string]>> = {
  50400: [400, 'Invalid Parameter'],
  50429: [429, 'Request Has Reached API Limit, Please Try Later'],
  50430: [429, 'Request Has Reached API Concurrent Limit, Please Try Later'],
  50500: [500, 'Internal Error'],
  50511: [400, 'Post Img Risk Not Pass'],
};

export function businessError(code: number, detail?: string): [number, string] {
  const [status, message] = BUSINESS[code] ?? [code >= 50500 ? 500 : 400, `Error ${code}`];
  const body = {
    code,
    data: null,
    message: detail ? `${message}: ${detail}` : message,
    request_id: requestId(),
    status: code,
    time_elapsed: '1.2ms',
  };
  return [status, JSON.stringify(body)];
}

/** A success answer of the visual API around `data`. */
export function success(data: unknown): string {
  return JSON.stringify({
    code: 10000,
    data,
    message: 'Success',
    request_id: requestId(),
    status: 10000,
    time_elapsed: '1.1ms',
  });
}
