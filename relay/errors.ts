import type { FastifyError, FastifyReply } from 'fastify';

/**
 * Every error a client sees is in OpenAI's shape, `{"error": {"message", "type", "code"}}`, so
 * SDKs surface it properly. Codes are stable strings clients may match on.
 */

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'server_error'
  | 'upstream_error';

export interface OpenAIErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string };
}

export class RelayError extends Error {
  readonly statusCode: number;
  readonly type: ErrorType;
  readonly code: string;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(
    statusCode: number,
    type: ErrorType,
    code: string,
    message: string,
    opts: { param?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'RelayError';
    this.statusCode = statusCode;
    this.type = type;
    this.code = code;
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }

  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (code: string, message: string, param?: string) =>
  new RelayError(400, 'invalid_request_error', code, message, param ? { param } : {});

/** A model no Channel of the current config serves (OpenAI's own code and wording). */
export function modelNotFound(model: string): RelayError {
  return new RelayError(
    404,
    'invalid_request_error',
    'model_not_found',
    `The model '${model}' does not exist or is not served by this relay; GET /v1/models lists the models`,
    { param: 'model' },
  );
}

export function sendError(reply: FastifyReply, err: RelayError) {
  return reply.code(err.statusCode).headers(err.headers).send(err.body());
}

/** Fastify's own errors (body parsing, limits, routing) translated into the OpenAI shape. */
export function fromFastifyError(err: FastifyError): RelayError {
  if (err instanceof RelayError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new RelayError(413, 'invalid_request_error', 'request_too_large', 'request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new RelayError(
        415,
        'invalid_request_error',
        'unsupported_media_type',
        'send the body as application/json',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return badRequest('invalid_json', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return badRequest('invalid_content_length', 'the Content-Length header does not match the body');
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return badRequest('invalid_json', `the request body is not valid JSON: ${err.message}`);
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500)
    return new RelayError(status, 'invalid_request_error', 'bad_request', err.message);
  return new RelayError(500, 'server_error', 'internal_error', 'internal error in the relay');
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (a malformed request line, headers
 * over the size limit, a request that did not arrive in time) as raw HTTP/1.1 bytes in the OpenAI
 * shape. The connection is closed after it: the parser cannot tell where the next request starts.
 */
export function clientErrorResponse(err: { code?: string }): string {
  const e =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new RelayError(
          408,
          'invalid_request_error',
          'request_timeout',
          'the request (headers and body) did not arrive in time',
        )
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new RelayError(
            431,
            'invalid_request_error',
            'request_headers_too_large',
            'the request headers are too large',
          )
        : badRequest('malformed_request', 'the request is not valid HTTP/1.1');
  const body = JSON.stringify(e.body());
  const reason =
    e.statusCode === 408
      ? 'Request Timeout'
      : e.statusCode === 431
        ? 'Request Header Fields Too Large'
        : 'Bad Request';
  return `HTTP/1.1 ${e.statusCode} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
