import type { IncomingHttpHeaders } from 'node:http';

// Hop-by-hop headers (RFC 9110 §7.6.1) plus what must not cross the relay: the client's own
// credentials, cookies, client addresses, and body framing the relay recomputes.
const DROP_TO_UPSTREAM = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'content-type',
  'accept-encoding',
  'authorization',
  'x-api-key',
  'api-key',
  'cookie',
  'openai-organization',
  'openai-project',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'x-request-id',
]);

const DROP_TO_CLIENT = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
  'x-request-id',
]);

/** Headers for the upstream request: the client's minus the above, plus the channel credential. */
export function upstreamHeaders(incoming: IncomingHttpHeaders, authorization: string, bodyLength: number) {
  const out: Record<string, string | string[]> = {};
  const connectionTokens = listTokens(incoming.connection);
  for (const name in incoming) {
    if (DROP_TO_UPSTREAM.has(name) || connectionTokens?.has(name)) continue;
    const v = incoming[name];
    if (v !== undefined) out[name] = v;
  }
  out['authorization'] = authorization;
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
  const connectionTokens = listTokens(upstream['connection']);
  for (const name in upstream) {
    if (DROP_TO_CLIENT.has(name) || connectionTokens?.has(name)) continue;
    if (!keepLength && name === 'content-length') continue;
    const v = upstream[name];
    if (v !== undefined) out[name] = v;
  }
  const upstreamId = upstream['x-request-id'];
  if (upstreamId !== undefined) out['x-upstream-request-id'] = upstreamId;
  return out;
}

function listTokens(v: string | string[] | undefined): Set<string> | undefined {
  if (!v) return undefined;
  const s = Array.isArray(v) ? v.join(',') : v;
  if (s === 'keep-alive' || s === 'close') return undefined;
  return new Set(s.split(',').map((t) => t.trim().toLowerCase()));
}
