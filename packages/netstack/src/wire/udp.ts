/** UDP header (RFC 768): parse with length and checksum checks, emit with checksum. */
import { finishChecksum, partialChecksum, pseudoHeaderSum, sumWords } from './checksum.js';
import { IPPROTO_UDP, type ParseResult } from './ipv4.js';
import type { Ipv4Address } from './address.js';

export const UDP_HEADER_LEN = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export type UdpDropReason = 'udp.truncated' | 'udp.length' | 'udp.checksum';

/** Parses the UDP datagram in an IPv4 payload; `src`/`dst` feed the pseudo-header; `verify` false skips the checksum (loopback). */
export function parseUdp(buf: Uint8Array, src: Ipv4Address, dst: Ipv4Address, verify = true): ParseResult<UdpDatagram, UdpDropReason> {
  if (buf.length < UDP_HEADER_LEN) return { ok: false, reason: 'udp.truncated' };
  const length = (buf[4]! << 8) | buf[5]!;
  if (length < UDP_HEADER_LEN || length > buf.length) return { ok: false, reason: 'udp.length' };
  const checksum = (buf[6]! << 8) | buf[7]!;
  const datagram = buf.subarray(0, length);
  // Zero means the sender computed none (allowed over IPv4).
  if (verify && checksum !== 0 && finishChecksum(sumWords(datagram, pseudoHeaderSum(src, dst, IPPROTO_UDP, length))) !== 0) {
    return { ok: false, reason: 'udp.checksum' };
  }
  return {
    ok: true,
    value: { srcPort: (buf[0]! << 8) | buf[1]!, dstPort: (buf[2]! << 8) | buf[3]!, payload: buf.subarray(UDP_HEADER_LEN, length) },
  };
}

/**
 * Writes the 8-byte header in front of a payload already in place at
 * `offset + 8` of `out`, and its checksum over the pseudo-header (with
 * `offload`, loopback's partial sum: see emitTcpHeader).
 */
export function emitUdpHeader(
  srcPort: number,
  dstPort: number,
  src: Ipv4Address,
  dst: Ipv4Address,
  payloadLength: number,
  out: Uint8Array,
  offset = 0,
  offload = false,
): void {
  const length = UDP_HEADER_LEN + payloadLength;
  const b = out.subarray(offset, offset + length);
  b[0] = srcPort >> 8;
  b[1] = srcPort & 0xff;
  b[2] = dstPort >> 8;
  b[3] = dstPort & 0xff;
  b[4] = length >> 8;
  b[5] = length & 0xff;
  b[6] = 0;
  b[7] = 0;
  const pseudo = pseudoHeaderSum(src, dst, IPPROTO_UDP, length);
  let sum = offload ? partialChecksum(pseudo) : finishChecksum(sumWords(b, pseudo));
  if (sum === 0) sum = 0xffff; // 0 would mean "no checksum"
  b[6] = sum >> 8;
  b[7] = sum & 0xff;
}
