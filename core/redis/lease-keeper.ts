import type { RedisConnection } from './connection.ts';

/**
 * Keeps the permits this process holds alive. A permit is a sorted-set member whose score is its
 * expiry; it is written with a short TTL and renewed here every third of it while the request
 * runs (never past the request's own deadline), so the permits of a pod that dies (kill -9, node
 * loss) come back within one TTL instead of one request timeout.
 */
export class LeaseKeeper {
  readonly #conn: RedisConnection;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #held = new Map<string, Map<string, number>>(); // key -> member -> deadline
  readonly #timer: NodeJS.Timeout;

  constructor(conn: RedisConnection, ttlMs: number, now: () => number = Date.now) {
    this.#conn = conn;
    this.#ttlMs = ttlMs;
    this.#now = now;
    this.#timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(ttlMs / 3)));
    this.#timer.unref();
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Expiry to write now for a permit that must not outlive `deadline`. */
  expiry(deadline: number): number {
    return Math.min(this.#now() + this.#ttlMs, deadline);
  }

  add(key: string, member: string, deadline: number) {
    let m = this.#held.get(key);
    if (!m) {
      m = new Map();
      this.#held.set(key, m);
    }
    m.set(member, deadline);
  }

  remove(key: string, member: string) {
    const m = this.#held.get(key);
    if (!m) return;
    m.delete(member);
    if (m.size === 0) this.#held.delete(key);
  }

  get size(): number {
    let n = 0;
    for (const m of this.#held.values()) n += m.size;
    return n;
  }

  /** One ZADD XX per key: renews members still held in Redis, never re-creates released ones. */
  async renew(): Promise<void> {
    if (this.#held.size === 0 || !this.#conn.up) return;
    const now = this.#now();
    const work: Promise<unknown>[] = [];
    for (const [key, members] of this.#held) {
      const args: (string | number)[] = [];
      for (const [member, deadline] of members) {
        if (deadline <= now) {
          members.delete(member);
          continue;
        }
        args.push(Math.min(now + this.#ttlMs, deadline), member);
      }
      if (members.size === 0) this.#held.delete(key);
      if (args.length === 0) continue;
      work.push(
        this.#conn
          .run('renew', async (c) => {
            await c.zadd(key, 'XX', ...args);
            await c.pexpire(key, this.#ttlMs * 2);
          })
          .catch(() => {}),
      );
    }
    await Promise.all(work);
  }

  stop() {
    clearInterval(this.#timer);
    this.#held.clear();
  }
}
