/** IPv4 header (RFC 791): parse with every length checked, emit with checksum. */
import { internetChecksum } from './checksum.js';
import type { Ipv4Address } from './address.js';

export const IPV4_HEADER_LEN = 20;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export interface Ipv4Header {
  dscpEcn: number;
  identification: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** Offset of this fragment's data, in bytes (a multiple of 8). */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  src: Ipv4Address;
  dst: Ipv4Address;
}

export interface Ipv4Packet extends Ipv4Header {
  /** Header length in bytes, options included (options are skipped, not interpreted). */
  headerLength: number;
  payload: Uint8Array;
}

export type Ipv4DropReason = 'ipv4.truncated' | 'ipv4.version' | 'ipv4.headerLength' | 'ipv4.totalLength' | 'ipv4.checksum';
export type ParseResult<T, R extends string> = { ok: true; value: T } | { ok: false; reason: R };

/**
 * `tailLength`: the packet goes on past `buf`, in a view of its own
 * (PacketBuffer.tail); `buf` then holds its headers only, and `payload` the
 * part of the IP payload that is in `buf` (the TCP header).
 */
export function parseIpv4(buf: Uint8Array, tailLength = 0): ParseResult<Ipv4Packet, Ipv4DropReason> {
  if (buf.length < IPV4_HEADER_LEN) return { ok: false, reason: 'ipv4.truncated' };
  const version = buf[0]! >> 4;
  if (version !== 4) return { ok: false, reason: 'ipv4.version' };
  const headerLength = (buf[0]! & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LEN || headerLength > buf.length) return { ok: false, reason: 'ipv4.headerLength' };
  const totalLength = (buf[2]! << 8) | buf[3]!;
  // Link layers may pad (Ethernet's 60-byte minimum), never shorten.
  if (totalLength < headerLength || totalLength > buf.length + tailLength) return { ok: false, reason: 'ipv4.totalLength' };
  if (tailLength > 0 && totalLength !== buf.length + tailLength) return { ok: false, reason: 'ipv4.totalLength' };
  if (internetChecksum(buf, 0, headerLength) !== 0) return { ok: false, reason: 'ipv4.checksum' };
  const flagsFrag = (buf[6]! << 8) | buf[7]!;
  return {
    ok: true,
    value: {
      dscpEcn: buf[1]!,
      identification: (buf[4]! << 8) | buf[5]!,
      dontFragment: (flagsFrag & 0x4000) !== 0,
      moreFragments: (flagsFrag & 0x2000) !== 0,
      fragmentOffset: (flagsFrag & 0x1fff) * 8,
      ttl: buf[8]!,
      protocol: buf[9]!,
      src: readU32(buf, 12),
      dst: readU32(buf, 16),
      headerLength,
      payload: buf.subarray(headerLength, totalLength - tailLength),
    },
  };
}

/**
 * Writes a 20-byte header (no options) for `payloadLength` bytes of payload
 * into `out` at `offset`, checksum included.
 */
export function emitIpv4Header(h: Ipv4Header, payloadLength: number, out: Uint8Array, offset = 0): void {
  // Written at offset + k rather than into a subarray: this runs for every packet sent.
  const o = offset;
  const total = IPV4_HEADER_LEN + payloadLength;
  out[o] = 0x45;
  out[o + 1] = h.dscpEcn;
  out[o + 2] = total >> 8;
  out[o + 3] = total & 0xff;
  out[o + 4] = h.identification >> 8;
  out[o + 5] = h.identification & 0xff;
  const flagsFrag = (h.dontFragment ? 0x4000 : 0) | (h.moreFragments ? 0x2000 : 0) | (h.fragmentOffset / 8);
  out[o + 6] = flagsFrag >> 8;
  out[o + 7] = flagsFrag & 0xff;
  out[o + 8] = h.ttl;
  out[o + 9] = h.protocol;
  out[o + 10] = 0;
  out[o + 11] = 0;
  writeU32(out, o + 12, h.src);
  writeU32(out, o + 16, h.dst);
  const sum = internetChecksum(out, o, o + IPV4_HEADER_LEN);
  out[o + 10] = sum >> 8;
  out[o + 11] = sum & 0xff;
}

export function readU32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

export function writeU32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = (v >>> 16) & 0xff;
  b[i + 2] = (v >>> 8) & 0xff;
  b[i + 3] = v & 0xff;
}
