/** IPv4 addresses as unsigned 32-bit numbers inside the stack, dotted quads at its edges. */

export type Ipv4Address = number;

export function parseIpv4Address(text: string): Ipv4Address {
  const parts = text.split('.');
  if (parts.length !== 4) throw new RangeError(`not an IPv4 address: ${text}`);
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) throw new RangeError(`not an IPv4 address: ${text}`);
    value = value * 256 + Number(part);
  }
  return value >>> 0;
}

export function formatIpv4Address(addr: Ipv4Address): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

export const IPV4_ANY: Ipv4Address = 0;
export const IPV4_BROADCAST: Ipv4Address = 0xffffffff;

/** The network mask of a prefix length, e.g. 8 -> 255.0.0.0. */
export function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

export function inSubnet(addr: Ipv4Address, network: Ipv4Address, prefixLength: number): boolean {
  const mask = prefixMask(prefixLength);
  return ((addr & mask) >>> 0) === ((network & mask) >>> 0);
}
