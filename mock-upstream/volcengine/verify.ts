// The mock's check of Volcengine's request signature: the same algorithm as the adapter
// (providers/volcengine/sign.ts, itself checked against Volcengine's documented example) over the
// request as it arrived; any mismatch answers the gateway error Volcengine documents.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parseAuthorization, sha256Hex, sign } from '../../providers/volcengine/sign.ts';
import type { GatewayCode } from './errors.ts';

export interface VolcengineCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** A signature may be this far from the mock's clock (Volcengine refuses expired signatures). */
const MAX_SKEW_MS = 15 * 60_000;

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

function parseXDate(x: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(x);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : undefined;
}

/** undefined when the request is signed by `creds`; otherwise the gateway error to answer. */
export function verifySignature(
  req: IncomingMessage,
  raw: string,
  creds: VolcengineCredentials,
  now = Date.now(),
): { code: GatewayCode; args?: string[] } | undefined {
  const auth = header(req, 'authorization');
  if (!auth) return { code: 'MissingAuthenticationToken' };
  const parsed = parseAuthorization(auth);
  if (!parsed) return { code: 'SignatureDoesNotMatch' };
  if (parsed.accessKeyId !== creds.accessKeyId)
    return { code: 'InvalidAccessKey', args: [parsed.accessKeyId] };
  const xDate = header(req, 'x-date') ?? '';
  const at = parseXDate(xDate);
  if (at === undefined || Math.abs(now - at) > MAX_SKEW_MS || !xDate.startsWith(parsed.date)) {
    return { code: 'InvalidTimestamp' };
  }
  const signed = parsed.signedHeaders;
  if (!signed.includes('host') || !signed.includes('x-date')) return { code: 'SignatureDoesNotMatch' };
  const contentSha = header(req, 'x-content-sha256');
  if (contentSha !== undefined && contentSha !== sha256Hex(raw)) return { code: 'SignatureDoesNotMatch' };
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const v = header(req, name);
    if (v === undefined) return { code: 'SignatureDoesNotMatch' };
    headers[name] = v;
  }
  if (parsed.region !== 'cn-north-1' || parsed.service !== 'cv') return { code: 'SignatureDoesNotMatch' };
  const expected = sign(
    { method: req.method ?? 'GET', url: `http://${headers['host']}${req.url ?? '/'}`, headers, body: raw },
    { ...creds, region: parsed.region, service: parsed.service },
    xDate,
  ).signature;
  const ok = timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(parsed.signature, 'hex'));
  return ok ? undefined : { code: 'SignatureDoesNotMatch' };
}
