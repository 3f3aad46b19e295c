import type { RedisConnection } from './connection.ts';

/**
 * Keeps the permits this process holds alive. A permit is a sorted-set member whose score is its
 * expiry on Redis TIME; it is written with a short TTL and renewed here every third of it while
 * the request runs (never past the request's own deadline), so the permits of a pod that dies
 * (kill -9, node loss) come back within one TTL instead of one request timeout.
 * Renewal re-creates a permit Redis lost (an outage longer than the TTL, a restart without
 * persistence): its request is still running upstream. It renews at once when Redis comes back.
 * A release Redis did not hear (down, hung, the breaker open) is owed: retried on every tick and
 * at once when Redis comes back, so a freed permit is not held a whole TTL longer.
 * Deadlines are local (durations measured on this pod's clock); expiries are Redis's.
 */
export class LeaseKeeper {
  readonly #conn: RedisConnection;
  readonly #ttlMs: number;
  readonly #clock: (() => number) | undefined;
  readonly #held = new Map<string, Map<string, number>>(); // key -> member -> local deadline
  /** Releases to retry (idempotent scripts), by key and member; given up after two TTLs. */
  readonly #owed = new Map<string, { release: () => Promise<unknown>; until: number }>();
  readonly #timer: NodeJS.Timeout;
  readonly #unsubscribe: () => void;

  /** `clock` replaces Redis TIME (tests on a fake clock). */
  constructor(conn: RedisConnection, ttlMs: number, clock?: () => number) {
    this.#conn = conn;
    this.#ttlMs = ttlMs;
    this.#clock = clock;
    this.#timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(ttlMs / 3)));
    this.#timer.unref();
    this.#unsubscribe = conn.onResync(() => void this.renew());
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** The script argument for "now": the test clock, or '' for Redis TIME. */
  now(): number | '' {
    return this.#clock?.() ?? '';
  }

  /** How long a permit written now may live when it must not outlive `deadline` (local clock). */
  lifetime(deadline: number): number {
    return Math.max(1, Math.min(this.#ttlMs, deadline - this.#local()));
  }

  add(key: string, member: string, deadline: number) {
    let m = this.#held.get(key);
    if (!m) {
      m = new Map();
      this.#held.set(key, m);
    }
    m.set(member, deadline);
  }

  has(key: string, member: string): boolean {
    return this.#held.get(key)?.has(member) ?? false;
  }

  remove(key: string, member: string) {
    const m = this.#held.get(key);
    if (!m) return;
    m.delete(member);
    if (m.size === 0) this.#held.delete(key);
  }

  /** Sends `release` now; if Redis does not hear it, again until it does (it must be idempotent). */
  async release(key: string, member: string, release: () => Promise<unknown>): Promise<unknown> {
    this.remove(key, member);
    try {
      return await release();
    } catch {
      this.#owed.set(`${key}\0${member}`, { release, until: this.#local() + this.#ttlMs * 2 });
      return undefined;
    }
  }

  get size(): number {
    let n = 0;
    for (const m of this.#held.values()) n += m.size;
    return n;
  }

  /**
   * One script per key. A released permit is never re-created: it leaves #held before its release
   * is sent, and commands on the one connection run in order.
   */
  async renew(): Promise<void> {
    if (!this.#conn.up) return;
    await this.#retryOwed();
    if (this.#held.size === 0) return;
    const local = this.#local();
    const work: Promise<unknown>[] = [];
    for (const [key, members] of this.#held) {
      const args: (string | number)[] = [this.now(), this.#ttlMs * 2];
      for (const [member, deadline] of members) {
        if (deadline <= local) {
          members.delete(member);
          continue;
        }
        args.push(Math.min(this.#ttlMs, deadline - local), member);
      }
      if (members.size === 0) this.#held.delete(key);
      if (args.length === 2) continue;
      work.push(this.#conn.script('krLeaseRenew', [key], args).catch(() => {}));
    }
    await Promise.all(work);
  }

  stop() {
    clearInterval(this.#timer);
    this.#unsubscribe();
    this.#held.clear();
    this.#owed.clear();
  }

  async #retryOwed(): Promise<void> {
    const local = this.#local();
    for (const [id, owed] of this.#owed) {
      // Past two TTLs the permit has expired in Redis on its own.
      if (owed.until <= local) this.#owed.delete(id);
      else if (
        await owed.release().then(
          () => true,
          () => false,
        )
      )
        this.#owed.delete(id);
      else return; // still not heard: try again next tick
    }
  }

  #local(): number {
    return this.#clock?.() ?? Date.now();
  }
}
