import type { RelayConfig } from './relay-config.ts';

/**
 * How a rendered RelayConfig travels from the operator to the relays: one Secret (it holds
 * upstream credentials), one data key with the snapshot as JSON. The relay validates what it
 * reads against relayConfigSchema before serving it.
 */
export const CONFIG_SECRET_KEY = 'config.json';
export const DEFAULT_CONFIG_SECRET = 'kuberelay-relay-config';
export const HASH_ANNOTATION = 'kuberelay.io/config-hash';
export const GENERATION_ANNOTATION = 'kuberelay.io/config-generation';

export function encodeSnapshot(config: RelayConfig): string {
  return Buffer.from(JSON.stringify(config)).toString('base64');
}

/** Parses the Secret's data value; returns undefined when absent (validation is the caller's). */
export function decodeSnapshot(data: Record<string, string> | undefined): unknown {
  const b64 = data?.[CONFIG_SECRET_KEY];
  if (b64 === undefined) return undefined;
  return JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
}

/** `namespace/name` -> parts, for `--config-secret`. */
export function parseSecretRef(ref: string): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(ref);
  if (!m) throw new Error(`--config-secret must be NAMESPACE/NAME, not "${ref}"`);
  return { namespace: m[1]!, name: m[3]! };
}
