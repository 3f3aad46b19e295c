// Volcengine's request signature (its "HMAC-SHA256" scheme, AWS SigV4 in shape): a canonical
// request over the method, path, sorted query, the signed headers and the body's SHA-256, signed
// with a key derived from the Secret Access Key through the credential scope
// `{YYYYMMDD}/{region}/{service}/request`. Pure: the clock comes in as `xDate`.
// Spec: Volcengine's "签名方法" and "签名过程Demo" pages (volcengine.com/docs/6369).
import { createHash, createHmac } from 'node:crypto';

export const ALGORITHM = 'HMAC-SHA256';

export interface SigningKey {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  service: string;
}

export interface RequestToSign {
  method: string;
  /** Full URL: its path and query are signed. */
  url: string;
  /** Exactly the headers to sign (any case); `host` and `x-date` must be among them. */
  headers: Readonly<Record<string, string>>;
  body: string | Uint8Array;
}

export interface Signature {
  authorization: string;
  signature: string;
  signedHeaders: string;
  canonicalRequest: string;
  stringToSign: string;
  credentialScope: string;
}

export const sha256Hex = (data: string | Uint8Array): string =>
  createHash('sha256').update(data).digest('hex');

const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** `YYYYMMDDTHHMMSSZ`, UTC. */
export function xDateOf(at: Date): string {
  return at.toISOString().replace(/[-:]|\.\d{3}/g, '');
}

/** RFC 3986 percent-encoding: encodeURIComponent plus !'()*. */
const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Query parameters sorted by name (then value), each name and value RFC 3986-encoded. */
export function canonicalQuery(search: URLSearchParams): string {
  return [...search]
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

export function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(secretAccessKey, date), region), service), 'request');
}

export function sign(req: RequestToSign, key: SigningKey, xDate: string): Signature {
  const url = new URL(req.url);
  const headers = Object.entries(req.headers)
    .map(([k, v]) => [k.toLowerCase(), v.trim().replace(/\s+/g, ' ')] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = headers.map(([k]) => k).join(';');
  const canonicalRequest = [
    req.method.toUpperCase(),
    url.pathname || '/',
    canonicalQuery(url.searchParams),
    headers.map(([k, v]) => `${k}:${v}\n`).join(''),
    signedHeaders,
    sha256Hex(req.body),
  ].join('\n');
  const date = xDate.slice(0, 8);
  const credentialScope = `${date}/${key.region}/${key.service}/request`;
  const stringToSign = [ALGORITHM, xDate, credentialScope, sha256Hex(canonicalRequest)].join('\n');
  const signature = createHmac('sha256', signingKey(key.secretAccessKey, date, key.region, key.service))
    .update(stringToSign)
    .digest('hex');
  return {
    authorization: `${ALGORITHM} Credential=${key.accessKeyId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    signature,
    signedHeaders,
    canonicalRequest,
    stringToSign,
    credentialScope,
  };
}

/** The parts of an `Authorization: HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`. */
export interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

export function parseAuthorization(header: string): ParsedAuthorization | undefined {
  const m =
    /^HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(
      header.trim(),
    );
  if (!m) return undefined;
  return {
    accessKeyId: m[1]!,
    date: m[2]!,
    region: m[3]!,
    service: m[4]!,
    signedHeaders: m[5]!.split(';'),
    signature: m[6]!,
  };
}
