/**
 * ICMPv4 (RFC 792): echo, destination unreachable (with RFC 1191's next-hop
 * MTU) and time exceeded; checksum over the whole message.
 */
import { internetChecksum } from './checksum.js';
import { IPV4_HEADER_LEN, type ParseResult } from './ipv4.js';

export const ICMP_HEADER_LEN = 8;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;

/** Destination unreachable codes (RFC 792). */
export const ICMP_NET_UNREACHABLE = 0;
export const ICMP_HOST_UNREACHABLE = 1;
export const ICMP_PROTOCOL_UNREACHABLE = 2;
export const ICMP_PORT_UNREACHABLE = 3;
export const ICMP_FRAGMENTATION_NEEDED = 4;

/** Time exceeded codes (RFC 792). */
export const ICMP_TTL_EXCEEDED = 0;
export const ICMP_REASSEMBLY_TIME_EXCEEDED = 1;

/** An error's quote must hold the original IP header and the 8 bytes that name its flow (ports). */
const MIN_QUOTE_LEN = IPV4_HEADER_LEN + 8;

export interface IcmpEcho {
  type: typeof ICMP_ECHO_REQUEST | typeof ICMP_ECHO_REPLY;
  id: number;
  seq: number;
  data: Uint8Array;
}

export interface IcmpDestUnreachable {
  type: typeof ICMP_DEST_UNREACHABLE;
  code: number;
  /** RFC 1191, code 4 only (0 for other codes; also 0 from routers older than RFC 1191). */
  nextHopMtu: number;
  /** The original IP header and at least the first 8 bytes of its payload. */
  original: Uint8Array;
}

export interface IcmpTimeExceeded {
  type: typeof ICMP_TIME_EXCEEDED;
  code: number;
  original: Uint8Array;
}

export type IcmpMessage = IcmpEcho | IcmpDestUnreachable | IcmpTimeExceeded;

/**
 * Types other than these four are dropped with 'icmp.unknownType' rather than
 * parsed to a generic form: RFC 1122 (3.2.2) has hosts silently discard them,
 * and the reason lets the stack count them.
 */
export type IcmpDropReason = 'icmp.truncated' | 'icmp.checksum' | 'icmp.unknownType';

/** Parses the ICMP message that is a whole IPv4 payload. */
export function parseIcmp(buf: Uint8Array): ParseResult<IcmpMessage, IcmpDropReason> {
  if (buf.length < ICMP_HEADER_LEN) return { ok: false, reason: 'icmp.truncated' };
  if (internetChecksum(buf) !== 0) return { ok: false, reason: 'icmp.checksum' };
  const type = buf[0]!;
  const code = buf[1]!;
  const body = buf.subarray(ICMP_HEADER_LEN);
  switch (type) {
    case ICMP_ECHO_REQUEST:
    case ICMP_ECHO_REPLY:
      return { ok: true, value: { type, id: (buf[4]! << 8) | buf[5]!, seq: (buf[6]! << 8) | buf[7]!, data: body } };
    case ICMP_DEST_UNREACHABLE: {
      if (body.length < MIN_QUOTE_LEN) return { ok: false, reason: 'icmp.truncated' };
      const nextHopMtu = code === ICMP_FRAGMENTATION_NEEDED ? (buf[6]! << 8) | buf[7]! : 0;
      return { ok: true, value: { type, code, nextHopMtu, original: body } };
    }
    case ICMP_TIME_EXCEEDED:
      if (body.length < MIN_QUOTE_LEN) return { ok: false, reason: 'icmp.truncated' };
      return { ok: true, value: { type, code, original: body } };
    default:
      return { ok: false, reason: 'icmp.unknownType' };
  }
}

/** What an error about `datagram` (an IPv4 packet) quotes: its header, options included, and 8 bytes of payload. */
export function icmpQuote(datagram: Uint8Array): Uint8Array {
  return datagram.subarray(0, (datagram[0]! & 0x0f) * 4 + 8);
}

function isEcho(msg: IcmpMessage): msg is IcmpEcho {
  return msg.type === ICMP_ECHO_REQUEST || msg.type === ICMP_ECHO_REPLY;
}

export function icmpLength(msg: IcmpMessage): number {
  return ICMP_HEADER_LEN + (isEcho(msg) ? msg.data : msg.original).length;
}

/** Writes the whole message (header, copied body, checksum) into `out` at `offset`; it takes `icmpLength(msg)` bytes. */
export function emitIcmp(msg: IcmpMessage, out: Uint8Array, offset = 0): void {
  const b = out.subarray(offset, offset + icmpLength(msg));
  b.set(isEcho(msg) ? msg.data : msg.original, ICMP_HEADER_LEN);
  b[0] = msg.type;
  b[1] = isEcho(msg) ? 0 : msg.code;
  b.fill(0, 2, 8); // checksum and the "unused" bytes RFC 792 wants zero
  if (isEcho(msg)) {
    b[4] = msg.id >> 8;
    b[5] = msg.id & 0xff;
    b[6] = msg.seq >> 8;
    b[7] = msg.seq & 0xff;
  } else if (msg.type === ICMP_DEST_UNREACHABLE && msg.code === ICMP_FRAGMENTATION_NEEDED) {
    b[6] = msg.nextHopMtu >> 8;
    b[7] = msg.nextHopMtu & 0xff;
  }
  const sum = internetChecksum(b);
  b[2] = sum >> 8;
  b[3] = sum & 0xff;
}
