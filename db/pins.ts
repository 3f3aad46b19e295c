import {
  type ListQuery,
  listLimit,
  type Pin,
  type PinnedKind,
  type PinnedObject,
  type PinStore,
} from '../core/pins/store.ts';
import type { PrismaClient, UpstreamObject } from './generated/client.ts';

/**
 * Pins in the database (`upstream_objects`): the durable record, on PostgreSQL or PGlite alike.
 * Lists are newest first by creation time, ties by id (descending), so `after` pages through
 * every object exactly once whatever the clock did.
 */
export class PrismaPinStore implements PinStore {
  readonly #db: PrismaClient;

  constructor(db: PrismaClient) {
    this.#db = db;
  }

  async pin(kind: PinnedKind, id: string, pin: Pin): Promise<void> {
    // First pin wins: a conflicting insert leaves the existing row as it is.
    await this.#db.upstreamObject.createMany({
      data: [
        {
          kind,
          id,
          channel: pin.channel,
          keyId: pin.keyId ?? null,
          model: pin.model ?? null,
          createdAt: new Date(pin.createdAt),
        },
      ],
      skipDuplicates: true,
    });
  }

  async lookup(kind: PinnedKind, id: string): Promise<Pin | undefined> {
    const row = await this.#db.upstreamObject.findUnique({ where: { kind_id: { kind, id } } });
    return row ? toObject(row) : undefined;
  }

  async unpin(kind: PinnedKind, id: string): Promise<void> {
    await this.#db.upstreamObject.deleteMany({ where: { kind, id } });
  }

  async list(kind: PinnedKind, query: ListQuery): Promise<PinnedObject[]> {
    const keyId = query.keyId ?? null;
    let before = {};
    if (query.after !== undefined) {
      const a = await this.#db.upstreamObject.findUnique({ where: { kind_id: { kind, id: query.after } } });
      // A cursor kuberelay does not know (or another key's) ends the listing.
      if (!a || a.keyId !== keyId) return [];
      before = { OR: [{ createdAt: { lt: a.createdAt } }, { createdAt: a.createdAt, id: { lt: a.id } }] };
    }
    const rows = await this.#db.upstreamObject.findMany({
      where: { kind, keyId, ...before },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: listLimit(query),
    });
    return rows.map(toObject);
  }

  async claimBilling(kind: PinnedKind, id: string): Promise<boolean> {
    const r = await this.#db.upstreamObject.updateMany({
      where: { kind, id, billedAt: null },
      data: { billedAt: new Date() },
    });
    return r.count === 1;
  }
}

function toObject(row: UpstreamObject): PinnedObject {
  const o: PinnedObject = {
    kind: row.kind as PinnedKind,
    id: row.id,
    channel: row.channel,
    keyId: row.keyId ?? undefined,
    createdAt: row.createdAt.getTime(),
  };
  return row.model === null ? o : { ...o, model: row.model };
}
