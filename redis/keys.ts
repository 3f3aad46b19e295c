/**
 * Every Redis key kuberelay uses, in one place. Keys carry a hash tag (`{...}`) so each multi-key
 * script touches a single Redis Cluster slot:
 *
 *   <p>{ch:<channel>}:health             hash f,u,s,v   consecutive failures, cooldown until (epoch
 *                                                       ms), cooldown streak, version (µs)
 *   <p>{ch:<channel>}:leases             zset           maxConcurrent permits, score = expiry ms
 *   <p>{sp:<scope>:<id>}:d:<YYYY-MM-DD>  hash c,r,p,o   cost USD, requests, prompt, completion
 *   <p>{sp:<scope>:<id>}:m:<YYYY-MM>     hash           the same per month
 *   <p>{rl}:<policy>:<i>:<algo>:<per>:<bucket>         rate-limit buckets (one slot for all of
 *                                                       them, so one script decides a request)
 *   <p>{pods}:r:<pod>                    string (JSON)  pod report, expires with the pod
 *   <p>{pods}:index                      zset           pod -> last report ms
 *   <p>{pin:<kind>:<id>}                 string (JSON)  the channel an upstream object lives on
 *   <p>{pin:<kind>:<id>}:billed          string         its usage was charged (once)
 *   <p>{pins:<kind>:<key>}               zset           a key's objects, score = created ms
 *                                                       (only without a database)
 *   <p>events                            pub/sub        cooldown changes and freed permits
 *
 * `<p>` is the prefix (default `kr:`), so several fleets can share one Redis.
 */

export const DEFAULT_PREFIX = 'kr:';

export interface KeyLayout {
  prefix: string;
  health(channelId: string): string;
  leases(channelId: string): string;
  spendDay(scope: string, id: string, day: string): string;
  spendMonth(scope: string, id: string, month: string): string;
  limit(checkKey: string): string;
  podReport(pod: string): string;
  podIndex(): string;
  events(): string;
  pin(kind: string, id: string): string;
  pinBilled(kind: string, id: string): string;
  pinList(kind: string, keyId: string | undefined): string;
}

export function keyLayout(prefix = DEFAULT_PREFIX): KeyLayout {
  return {
    prefix,
    health: (id) => `${prefix}{ch:${id}}:health`,
    leases: (id) => `${prefix}{ch:${id}}:leases`,
    spendDay: (scope, id, day) => `${prefix}{sp:${scope}:${id}}:d:${day}`,
    spendMonth: (scope, id, month) => `${prefix}{sp:${scope}:${id}}:m:${month}`,
    limit: (checkKey) => `${prefix}{rl}:${checkKey}`,
    podReport: (pod) => `${prefix}{pods}:r:${pod}`,
    podIndex: () => `${prefix}{pods}:index`,
    events: () => `${prefix}events`,
    pin: (kind, id) => `${prefix}{pin:${kind}:${id}}`,
    pinBilled: (kind, id) => `${prefix}{pin:${kind}:${id}}:billed`,
    pinList: (kind, keyId) => `${prefix}{pins:${kind}:${keyId ?? '~anonymous'}}`,
  };
}
