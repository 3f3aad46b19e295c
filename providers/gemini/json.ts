// Small guards for reading untyped JSON (request bodies and upstream answers).

export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export const asObject = (v: unknown): Json | undefined => (isObject(v) ? v : undefined);

export const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** A non-negative finite number, else 0 (token counts). */
export const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
