/** ARP (RFC 826) for IPv4 over Ethernet, the only hardware and protocol pair the stack speaks. */
import type { Ipv4Address } from './address.js';
import { ETHERTYPE_IPV4, readMac, writeMac, type MacAddress } from './ethernet.js';
import { readU32, writeU32, type ParseResult } from './ipv4.js';

/** Fixed for Ethernet and IPv4: 8 bytes of header, two MAC and two IPv4 addresses. */
export const ARP_LEN = 28;
export const ARP_HTYPE_ETHERNET = 1;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

export interface ArpPacket {
  opcode: typeof ARP_REQUEST | typeof ARP_REPLY;
  senderMac: MacAddress;
  senderIp: Ipv4Address;
  /** Ignored in a request (conventionally zero). */
  targetMac: MacAddress;
  targetIp: Ipv4Address;
}

export type ArpDropReason = 'arp.truncated' | 'arp.hardwareType' | 'arp.protocolType' | 'arp.addressLength' | 'arp.opcode';

/** Bytes past the 28 (Ethernet padding) are ignored. */
export function parseArp(buf: Uint8Array): ParseResult<ArpPacket, ArpDropReason> {
  if (buf.length < ARP_LEN) return { ok: false, reason: 'arp.truncated' };
  if (((buf[0]! << 8) | buf[1]!) !== ARP_HTYPE_ETHERNET) return { ok: false, reason: 'arp.hardwareType' };
  if (((buf[2]! << 8) | buf[3]!) !== ETHERTYPE_IPV4) return { ok: false, reason: 'arp.protocolType' };
  // The lengths are redundant with the types, but a packet that lies about them has the wrong layout.
  if (buf[4] !== 6 || buf[5] !== 4) return { ok: false, reason: 'arp.addressLength' };
  const opcode = (buf[6]! << 8) | buf[7]!;
  if (opcode !== ARP_REQUEST && opcode !== ARP_REPLY) return { ok: false, reason: 'arp.opcode' };
  return {
    ok: true,
    value: {
      opcode,
      senderMac: readMac(buf, 8),
      senderIp: readU32(buf, 14),
      targetMac: readMac(buf, 18),
      targetIp: readU32(buf, 24),
    },
  };
}

/** Writes the 28-byte packet into `out` at `offset`. */
export function emitArp(p: ArpPacket, out: Uint8Array, offset = 0): void {
  const b = out.subarray(offset, offset + ARP_LEN);
  b.set([0, ARP_HTYPE_ETHERNET, ETHERTYPE_IPV4 >> 8, ETHERTYPE_IPV4 & 0xff, 6, 4, 0, p.opcode]);
  writeMac(b, 8, p.senderMac);
  writeU32(b, 14, p.senderIp);
  writeMac(b, 18, p.targetMac);
  writeU32(b, 24, p.targetIp);
}
