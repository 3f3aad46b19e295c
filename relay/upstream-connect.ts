import { lookup as systemLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { isLinkLocalAddress } from '../core/config/link-local.ts';

/**
 * The connector of a channel's pool. Unless the Channel opted in (`spec.allowLinkLocal`), it
 * refuses to connect to a link-local or cloud metadata address: a literal one, or one the name
 * resolves to when the connection is made, so a DNS answer that changes after render (rebinding)
 * cannot reach the metadata service either.
 */
export function upstreamConnector(o: {
  channel: string;
  connectTimeoutMs: number;
  allowLinkLocal: boolean;
}): buildConnector.connector {
  if (o.allowLinkLocal) return buildConnector({ timeout: o.connectTimeoutMs });
  const connect = buildConnector({
    timeout: o.connectTimeoutMs,
    lookup: refusingLinkLocal(systemLookup, o.channel),
  });
  return (opts, callback) => {
    if (isLinkLocalAddress(opts.hostname)) {
      callback(linkLocalError(o.channel, opts.hostname, opts.hostname), null);
      return;
    }
    connect(opts, callback);
  };
}

export class LinkLocalRefusedError extends Error {
  override name = 'LinkLocalRefusedError';
  readonly code = 'ERR_KUBERELAY_LINK_LOCAL';
}

function linkLocalError(channel: string, host: string, address: string): LinkLocalRefusedError {
  const via = host === address ? '' : ` (${host} resolves to it)`;
  return new LinkLocalRefusedError(
    `channel ${channel}: refusing to connect to ${address}${via}, a link-local or cloud metadata address; the Channel can allow it with spec.allowLinkLocal: true`,
  );
}

/** `lookup` for net.connect that fails when any address of the answer is link-local. */
export function refusingLinkLocal(lookup: typeof systemLookup, channel: string): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const bad = addresses.find((a) => isLinkLocalAddress(a.address));
      if (bad) return callback(linkLocalError(channel, hostname, bad.address), '', 0);
      if (options.all) return (callback as (e: null, a: typeof addresses) => void)(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  };
}
