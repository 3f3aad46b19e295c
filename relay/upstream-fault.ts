/**
 * Which side an attempt's failure is on, and whether an answer is the API's answer at all. Only
 * the upstream's failures count against a channel (cooldowns, failover reasons); an error raised
 * on the relay's side is the relay's own 5xx.
 */

/** Why an attempt failed on the upstream's side; also the `reason` metric label. */
export type FailureReason =
  | 'connect'
  | 'timeout'
  | 'reset'
  | 'network'
  | 'stream'
  | 'content_type'
  | 'first_token'
  | `status_${string}`;

/**
 * Which side failed: the upstream's when the error came from the connection (a socket system
 * call, TLS, the HTTP parser, undici's socket and timeout errors); undefined when it was raised on
 * the relay's side before the upstream saw a byte (an invalid header or argument, a closed pool).
 */
export function upstreamFault(err: unknown): FailureReason | undefined {
  const code = errCode(err);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timeout';
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    // The channel's name now resolves to a link-local/metadata address (relay/upstream-connect.ts):
    // the channel's address is unusable, so it fails over and cools down like a refused connect.
    case 'ERR_KUBERELAY_LINK_LOCAL':
      return 'connect';
    case 'ECONNRESET':
    case 'ECONNABORTED':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return 'reset';
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return 'network';
    // The relay's own resources ran out (descriptors, memory, local ports): not the upstream.
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOMEM':
    case 'ENOBUFS':
    case 'EADDRNOTAVAIL':
      return undefined;
  }
  if (code.startsWith('HPE_') || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) return 'network';
  if ((err as Error | undefined)?.name === 'HTTPParserError') return 'network'; // not HTTP at all
  if (code.includes('CERT') || hasSyscall(err)) return 'connect';
  return undefined;
}

function hasSyscall(err: unknown): boolean {
  const e = err as { syscall?: unknown; cause?: { syscall?: unknown } } | undefined;
  return typeof (e?.syscall ?? e?.cause?.syscall) === 'string';
}

/** Does a 2xx answer's content type fit what the endpoint returns (JSON, or SSE for streams)? */
export function fitsEndpoint(contentType: string, stream: boolean): boolean {
  return stream ? isEventStream(contentType) : isJson(contentType);
}

const mediaType = (contentType: string) => contentType.split(';', 1)[0]!.trim().toLowerCase();
export const isEventStream = (contentType: string) => mediaType(contentType) === 'text/event-stream';
/** A media endpoint's answer (audio bytes, a text transcript, JSON, SSE): anything but an HTML page. */
export const isMedia = (contentType: string) => contentType !== '' && mediaType(contentType) !== 'text/html';
export function isJson(contentType: string): boolean {
  const t = mediaType(contentType);
  return t === 'application/json' || t.endsWith('+json');
}

export function errCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : 'unknown';
}
