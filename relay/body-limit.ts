/**
 * The largest request body the relay reads, for every route (JSON and multipart):
 * KUBERELAY_MAX_BODY_BYTES, default 32 MiB (room for audio uploads, image edits and base64 images).
 * Beyond it the client gets a 413 in OpenAI's error shape.
 */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

export function maxBodyBytesFromEnv(v = process.env.KUBERELAY_MAX_BODY_BYTES): number {
  if (v === undefined || v === '') return DEFAULT_MAX_BODY_BYTES;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1024) {
    throw new Error(`KUBERELAY_MAX_BODY_BYTES must be a whole number of bytes, at least 1024, not "${v}"`);
  }
  return n;
}
