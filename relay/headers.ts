import type { IncomingHttpHeaders } from 'node:http';

/**
 * Headers cross the relay by allow-list in both directions (a header nobody listed stays behind):
 * the client's credentials, cookies, addresses, identity (user agent, SDK platform headers) and
 * method overrides never reach a provider, and the provider's account headers (organization,
 * project, cookies, its own rate-limit figures) never reach a client. The relay sets body framing
 * itself: it may rewrite the request body (a renamed model, a translated request), so the client's
 * `content-length`, `content-encoding` or `expect` would describe another body.
 */

/** Client request headers a provider may see: API feature switches and retry identity. */
export const TO_UPSTREAM: ReadonlySet<string> = new Set([
  'accept',
  'openai-beta', // Assistants/Realtime feature opt-ins
  'idempotency-key',
  // W3C trace context: the caller's trace goes on upstream (with tracing on, as the attempt's span).
  'traceparent',
  'tracestate',
]);

/** Upstream response headers a client may see: how to read the body, and when to retry. */
export const TO_CLIENT: ReadonlySet<string> = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'content-disposition',
  'cache-control',
  'retry-after',
  'openai-processing-ms',
  'openai-version',
]);

const USER_AGENT = 'kuberelay';

/**
 * Headers for the upstream request: the allowed client headers (and those the channel's provider
 * reads, `providerHeaders`, e.g. `anthropic-beta` for Anthropic only), then the channel's own (its
 * static `headers` and the credential its provider adapter places, lower-case names), then body
 * framing.
 */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  channel: Readonly<Record<string, string>>,
  bodyLength: number,
  providerHeaders: readonly string[] = [],
) {
  const out: Record<string, string | string[]> = {};
  for (const name of TO_UPSTREAM) {
    const v = incoming[name];
    if (v !== undefined) out[name] = v;
  }
  for (const name of providerHeaders) {
    const v = incoming[name];
    if (v !== undefined) out[name] = v;
  }
  out['user-agent'] = USER_AGENT;
  Object.assign(out, channel);
  out['content-type'] = 'application/json';
  // The relay reads usage out of bodies, so it asks for them uncompressed.
  out['accept-encoding'] = 'identity';
  out['content-length'] = String(bodyLength);
  return out;
}

/** Upstream response headers for the client. `keepLength` is false when the relay rewrites the body. */
export function clientHeaders(
  upstream: Record<string, string | string[] | undefined>,
  keepLength: boolean,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name of TO_CLIENT) {
    if (!keepLength && name === 'content-length') continue;
    const v = upstream[name];
    if (v !== undefined) out[name] = v;
  }
  const upstreamId = upstream['x-request-id'];
  if (upstreamId !== undefined) out['x-upstream-request-id'] = upstreamId;
  return out;
}
