import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Client key secrets: `sk-kr-` + 43 base62 characters (~256 random bits). Only the SHA-256 of a
 * secret is stored; with that much entropy a salted slow hash buys nothing, and SHA-256 keeps the
 * lookup on the request path to microseconds. The first characters are kept for display.
 */

export const SECRET_PREFIX = 'sk-kr-';
const BODY_LENGTH = 43;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const WELL_FORMED = new RegExp(`^${SECRET_PREFIX}[0-9A-Za-z]{${BODY_LENGTH}}$`);
/** Characters of the body shown in listings: enough to tell keys apart, far too few to guess. */
const DISPLAY_CHARS = 8;

/** Uniform base62 from rejection sampling (bytes >= 248 would bias the first 8 symbols). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248) out += ALPHABET[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function generateSecret(): string {
  return SECRET_PREFIX + randomBase62(BODY_LENGTH);
}

export function generateKeyId(): string {
  return `key_${randomBase62(16)}`;
}

export function isWellFormedSecret(secret: string): boolean {
  return WELL_FORMED.test(secret);
}

/** One-shot digest: no Hash object per request (createHash + update + digest cost ~3x as much). */
export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

export function displayPrefix(secret: string): string {
  return secret.slice(0, SECRET_PREFIX.length + DISPLAY_CHARS);
}

/** Constant-time equality of two hex digests. */
export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
