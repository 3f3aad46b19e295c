import {
  type ListQuery,
  listLimit,
  type Pin,
  type PinnedKind,
  type PinnedObject,
  type PinStore,
} from './store.ts';

/** In-process pins (embedded mode, one relay): lost on restart, which a single pod's users accept. */
export class MemoryPinStore implements PinStore {
  readonly #pins = new Map<string, PinnedObject>();
  // Creation order per kind, for newest-first listing.
  readonly #order = new Map<PinnedKind, string[]>();
  readonly #billed = new Set<string>();

  async pin(kind: PinnedKind, id: string, pin: Pin): Promise<void> {
    const k = `${kind}:${id}`;
    if (this.#pins.has(k)) return;
    this.#pins.set(k, { ...pin, kind, id });
    const ids = this.#order.get(kind);
    if (ids) ids.push(id);
    else this.#order.set(kind, [id]);
  }

  async lookup(kind: PinnedKind, id: string): Promise<Pin | undefined> {
    return this.#pins.get(`${kind}:${id}`);
  }

  async unpin(kind: PinnedKind, id: string): Promise<void> {
    if (!this.#pins.delete(`${kind}:${id}`)) return;
    this.#billed.delete(`${kind}:${id}`);
    const ids = this.#order.get(kind);
    if (ids) ids.splice(ids.indexOf(id), 1);
  }

  async list(kind: PinnedKind, query: ListQuery): Promise<PinnedObject[]> {
    const ids = this.#order.get(kind) ?? [];
    const out: PinnedObject[] = [];
    let skipping = query.after !== undefined;
    for (let i = ids.length - 1; i >= 0 && out.length < listLimit(query); i--) {
      const id = ids[i] as string;
      if (skipping) {
        if (id === query.after) skipping = false;
        continue;
      }
      const obj = this.#pins.get(`${kind}:${id}`);
      if (obj && obj.keyId === query.keyId) out.push(obj);
    }
    return out;
  }

  async claimBilling(kind: PinnedKind, id: string): Promise<boolean> {
    const k = `${kind}:${id}`;
    if (!this.#pins.has(k) || this.#billed.has(k)) return false;
    this.#billed.add(k);
    return true;
  }
}
