/**
 * Objects that live upstream (responses, files, batches) are pinned to the channel that created
 * them: every later call on that id (retrieve, list, delete, cancel, content) goes to that
 * channel, from any pod. This is the one home of that mapping. `memory.ts` is the embedded
 * single-instance implementation; the fleet-wide one (Redis for speed, the database as the
 * durable record) fits the same contract.
 *
 * Ids are the upstream's own ids, namespaced by kind: a `file-abc` pinned by one channel never
 * answers for a `resp_abc`. A pin names the channel by its config id (`namespace/name`), never by
 * credentials; a channel that is gone later is the caller's 404/410, not another upstream's answer.
 */

export type PinnedKind = 'response' | 'file' | 'batch';

export interface Pin {
  /** The channel id (`namespace/name`) that created the object. */
  readonly channel: string;
  /** The kuberelay key that created it (undefined with KUBERELAY_AUTH=none): only it may see it. */
  readonly keyId: string | undefined;
  /** The model the client named, when the create call had one. */
  readonly model?: string | undefined;
  /** Epoch ms of the create call. */
  readonly createdAt: number;
}

export interface PinnedObject extends Pin {
  readonly kind: PinnedKind;
  readonly id: string;
}

export interface ListQuery {
  /** Only objects of this key (undefined: the anonymous key of KUBERELAY_AUTH=none). */
  readonly keyId: string | undefined;
  /** Newest first; at most this many (default 20, at most 100). */
  readonly limit?: number;
  /** Return objects created before this id (the OpenAI `after` cursor: newest-first paging). */
  readonly after?: string;
}

export interface PinStore {
  /** Records that `id` lives on `pin.channel`. Idempotent: the first pin of an id wins. */
  pin(kind: PinnedKind, id: string, pin: Pin): Promise<void>;
  /** The pin of an id, or undefined when kuberelay never saw it (or it was unpinned). */
  lookup(kind: PinnedKind, id: string): Promise<Pin | undefined>;
  /** Forgets an id (after a successful upstream delete). */
  unpin(kind: PinnedKind, id: string): Promise<void>;
  /** The caller's objects of one kind, newest first. */
  list(kind: PinnedKind, query: ListQuery): Promise<PinnedObject[]>;
  /**
   * Marks a pinned object's usage as charged (a completed batch): true for the first caller
   * fleet-wide, false after that (or when the id is not pinned), so it is charged once.
   */
  claimBilling?(kind: PinnedKind, id: string): Promise<boolean>;
}

export const DEFAULT_LIST_LIMIT = 20;
export const MAX_LIST_LIMIT = 100;

/** The effective page size of a list query. */
export function listLimit(query: ListQuery): number {
  const n = query.limit ?? DEFAULT_LIST_LIMIT;
  return Math.max(1, Math.min(MAX_LIST_LIMIT, Math.floor(n)));
}
