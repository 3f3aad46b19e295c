import {
  type ListQuery,
  listLimit,
  type Pin,
  type PinnedKind,
  type PinnedObject,
  type PinStore,
} from '../core/pins/store.ts';
import type { Sql } from './database.ts';

/**
 * Pins in the database (`upstream_objects`): the durable record, on PostgreSQL or PGlite alike.
 * Lists are newest first by creation time, ties by id (descending), so `after` pages through
 * every object exactly once whatever the clock did.
 */

interface Row {
  kind: string;
  id: string;
  channel: string;
  key_id: string | null;
  model: string | null;
  created_at: Date;
}

const COLUMNS = 'kind, id, channel, key_id, model, created_at';

export class PrismaPinStore implements PinStore {
  readonly #db: Sql;

  constructor(db: Sql) {
    this.#db = db;
  }

  async pin(kind: PinnedKind, id: string, pin: Pin): Promise<void> {
    // First pin wins: a conflicting insert leaves the existing row as it is.
    await this.#db.query(
      `INSERT INTO upstream_objects (kind, id, channel, key_id, model, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, id) DO NOTHING`,
      [kind, id, pin.channel, pin.keyId ?? null, pin.model ?? null, new Date(pin.createdAt)],
    );
  }

  async lookup(kind: PinnedKind, id: string): Promise<Pin | undefined> {
    const [row] = await this.#db.query<Row>(
      `SELECT ${COLUMNS} FROM upstream_objects WHERE kind = $1 AND id = $2`,
      [kind, id],
    );
    return row ? toObject(row) : undefined;
  }

  async unpin(kind: PinnedKind, id: string): Promise<void> {
    await this.#db.query('DELETE FROM upstream_objects WHERE kind = $1 AND id = $2', [kind, id]);
  }

  async list(kind: PinnedKind, query: ListQuery): Promise<PinnedObject[]> {
    const keyId = query.keyId ?? null;
    const params: unknown[] = [kind, keyId, listLimit(query)];
    let before = '';
    if (query.after !== undefined) {
      const [a] = await this.#db.query<Row>(
        `SELECT ${COLUMNS} FROM upstream_objects WHERE kind = $1 AND id = $2`,
        [kind, query.after],
      );
      // A cursor kuberelay does not know (or another key's) ends the listing.
      if (!a || a.key_id !== keyId) return [];
      params.push(a.created_at, a.id);
      before = 'AND (created_at < $4 OR (created_at = $4 AND id < $5))';
    }
    const rows = await this.#db.query<Row>(
      `SELECT ${COLUMNS} FROM upstream_objects WHERE kind = $1 AND key_id IS NOT DISTINCT FROM $2 ${before}
       ORDER BY created_at DESC, id DESC LIMIT $3`,
      params,
    );
    return rows.map(toObject);
  }

  async claimBilling(kind: PinnedKind, id: string): Promise<boolean> {
    const rows = await this.#db.query(
      'UPDATE upstream_objects SET billed_at = now() WHERE kind = $1 AND id = $2 AND billed_at IS NULL RETURNING 1',
      [kind, id],
    );
    return rows.length === 1;
  }
}

function toObject(row: Row): PinnedObject {
  const o: PinnedObject = {
    kind: row.kind as PinnedKind,
    id: row.id,
    channel: row.channel,
    keyId: row.key_id ?? undefined,
    createdAt: row.created_at.getTime(),
  };
  return row.model === null ? o : { ...o, model: row.model };
}
