import type { Dispatcher } from 'undici';
import type { ChannelRuntime } from '../relay/runtime.ts';

/**
 * Opens a job's result URL through the channel's own dispatcher, so its connector's guard
 * against link-local and metadata addresses (relay/upstream-connect.ts) applies to every hop.
 * The channel's headers (its credential among them) go only to the channel's own origin and
 * only when the adapter asked (`resultAuth`); redirects are followed up to a bound, and a hop
 * to another origin (Veo's download answers 302 to a signed media URL) goes bare.
 */

export const MAX_RESULT_REDIRECTS = 5;

export class TooManyRedirectsError extends Error {
  override name = 'TooManyRedirectsError';
}

export async function fetchResult(
  ch: Pick<ChannelRuntime, 'dispatcher' | 'origin' | 'headers'>,
  url: string,
  o: { auth: boolean; headers: Record<string, string>; timeoutMs: number },
): Promise<Dispatcher.ResponseData> {
  let u = new URL(url);
  for (let hop = 0; ; hop++) {
    const own = o.auth && u.origin === ch.origin;
    const res = await ch.dispatcher.request({
      origin: u.origin,
      path: u.pathname + u.search,
      method: 'GET',
      headers: own ? { ...ch.headers, ...o.headers } : { ...o.headers },
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      signal: AbortSignal.timeout(o.timeoutMs),
    });
    const location = res.headers.location;
    if (res.statusCode < 300 || res.statusCode >= 400 || res.statusCode === 304 || !location) return res;
    await res.body.dump().catch(() => {});
    if (hop >= MAX_RESULT_REDIRECTS) {
      throw new TooManyRedirectsError(`the result URL redirected more than ${MAX_RESULT_REDIRECTS} times`);
    }
    u = new URL(Array.isArray(location) ? location[0]! : location, u);
  }
}
