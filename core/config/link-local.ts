import { BlockList, isIP } from 'node:net';

/**
 * Link-local and cloud metadata endpoints. A Channel pointing there would hand the relay's own
 * cloud credentials (instance metadata) to whoever may create Channels, so such a baseURL is
 * refused unless the Channel opts in with `spec.allowLinkLocal: true`. Render refuses literal
 * addresses and known metadata names; the relay checks every address a name resolves to when it
 * connects (relay/runtime.ts), so DNS cannot point an accepted name there later.
 */

const BLOCKED = new BlockList();
// IPv4 link-local: AWS, GCP, Azure, OCI, DigitalOcean metadata (169.254.169.254), ECS (169.254.170.2).
BLOCKED.addSubnet('169.254.0.0', 16, 'ipv4');
// Alibaba Cloud metadata.
BLOCKED.addAddress('100.100.100.200', 'ipv4');
// IPv6 link-local, and AWS IMDS over IPv6.
BLOCKED.addSubnet('fe80::', 10, 'ipv6');
BLOCKED.addAddress('fd00:ec2::254', 'ipv6');

const METADATA_NAMES = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
]);

/** Whether `address` (an IP literal; IPv4-mapped IPv6 included) is link-local or a metadata address. */
export function isLinkLocalAddress(address: string): boolean {
  const ip = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(ip);
  if (family === 0) return false;
  return BLOCKED.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/** Why a baseURL's host may not be used without opting in, or undefined when it may. */
export function linkLocalProblem(baseURL: string): string | undefined {
  const host = new URL(baseURL).hostname.toLowerCase().replace(/\.$/, '');
  if (isLinkLocalAddress(host)) return `${host} is a link-local or cloud metadata address`;
  if (METADATA_NAMES.has(host)) return `${host} is a cloud metadata endpoint`;
  return undefined;
}
