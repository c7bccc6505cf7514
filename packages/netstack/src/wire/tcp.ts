/** TCP header (RFC 9293) with its options: parse with every length checked, emit with checksum. */
import { finishChecksum, partialChecksum, pseudoHeaderSum, sumWords } from './checksum.js';
import { IPPROTO_TCP, readU32, writeU32, type ParseResult } from './ipv4.js';
import type { Ipv4Address } from './address.js';

export const TCP_HEADER_LEN = 20;
/** The data offset counts 32-bit words in 4 bits: 60 bytes at most, 40 of them options. */
export const TCP_MAX_HEADER_LEN = 60;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_MSS = 2; // RFC 9293
const OPT_WINDOW_SCALE = 3; // RFC 7323
const OPT_SACK_PERMITTED = 4; // RFC 2018
const OPT_SACK = 5; // RFC 2018
const OPT_TIMESTAMPS = 8; // RFC 7323

/** A received block, as sequence numbers: `left` is its first byte, `right` the one after its last. */
export interface SackBlock {
  left: number;
  right: number;
}

/** The options the stack understands; absent ones are undefined (parse never sets `sackPermitted: false`). */
export interface TcpOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  sackBlocks?: SackBlock[];
  timestamps?: { value: number; echo: number };
}

/**
 * Options with none set, every field present: all options objects the stack
 * makes have this one shape, so the code that reads them is compiled for
 * one shape, not deoptimized when a SYN's options follow data segments'.
 */
export function noOptions(): TcpOptions {
  return { mss: undefined, windowScale: undefined, sackPermitted: undefined, sackBlocks: undefined, timestamps: undefined };
}

export interface TcpHeader {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** A bit set of TCP_FIN ... TCP_CWR. */
  flags: number;
  window: number;
  urgentPointer: number;
  options: TcpOptions;
}

export interface TcpSegment extends TcpHeader {
  /** Header length in bytes, options and padding included. */
  headerLength: number;
  payload: Uint8Array;
}

export type TcpDropReason = 'tcp.truncated' | 'tcp.dataOffset' | 'tcp.checksum' | 'tcp.optionLength';

/**
 * Parses the TCP segment that is a whole IPv4 payload; `src`/`dst` feed the
 * pseudo-header. `verify` false skips the checksum (a loopback segment:
 * see Device.checksumOffload). An option that is too short, runs past the header, or has
 * the wrong length for its kind drops the segment: half-applying it would be
 * worse (RFC 9293 3.1 asks receivers to be ready for illegal lengths).
 */
export function parseTcp(buf: Uint8Array, src: Ipv4Address, dst: Ipv4Address, verify = true, tail?: Uint8Array): ParseResult<TcpSegment, TcpDropReason> {
  if (buf.length < TCP_HEADER_LEN) return { ok: false, reason: 'tcp.truncated' };
  const headerLength = (buf[12]! >> 4) * 4;
  if (headerLength < TCP_HEADER_LEN || headerLength > buf.length) return { ok: false, reason: 'tcp.dataOffset' };
  // A gathered segment (`tail`, its payload: see PacketBuffer.tail) has its header, and nothing else, in `buf`.
  if (tail !== undefined && headerLength !== buf.length) return { ok: false, reason: 'tcp.dataOffset' };
  if (verify) {
    // The header's length is a multiple of 4, so the tail's words continue the header's.
    const sum = sumWords(buf, pseudoHeaderSum(src, dst, IPPROTO_TCP, buf.length + (tail?.length ?? 0)));
    if (finishChecksum(tail === undefined ? sum : sumWords(tail, sum)) !== 0) return { ok: false, reason: 'tcp.checksum' };
  }
  const options = parseOptions(buf, headerLength);
  if (!options) return { ok: false, reason: 'tcp.optionLength' };
  return {
    ok: true,
    value: {
      srcPort: (buf[0]! << 8) | buf[1]!,
      dstPort: (buf[2]! << 8) | buf[3]!,
      seq: readU32(buf, 4),
      ack: readU32(buf, 8),
      flags: buf[13]!, // the reserved bits of byte 12 are ignored
      window: (buf[14]! << 8) | buf[15]!,
      urgentPointer: (buf[18]! << 8) | buf[19]!,
      options,
      headerLength,
      payload: tail ?? buf.subarray(headerLength),
    },
  };
}

/** Options between byte 20 and `end`, or null when one is malformed. Unknown kinds are skipped by their length. */
function parseOptions(b: Uint8Array, end: number): TcpOptions | null {
  const o = noOptions();
  let i = TCP_HEADER_LEN;
  while (i < end) {
    const kind = b[i]!;
    if (kind === OPT_EOL) break;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return null;
    const len = b[i + 1]!;
    if (len < 2 || i + len > end) return null;
    switch (kind) {
      case OPT_MSS:
        if (len !== 4) return null;
        o.mss = (b[i + 2]! << 8) | b[i + 3]!;
        break;
      case OPT_WINDOW_SCALE:
        if (len !== 3) return null;
        o.windowScale = b[i + 2]!; // clamping above 14 (RFC 7323 2.3) is the connection's job
        break;
      case OPT_SACK_PERMITTED:
        if (len !== 2) return null;
        o.sackPermitted = true;
        break;
      case OPT_SACK:
        if (len < 10 || (len - 2) % 8 !== 0) return null;
        o.sackBlocks = [];
        for (let j = i + 2; j < i + len; j += 8) o.sackBlocks.push({ left: readU32(b, j), right: readU32(b, j + 4) });
        break;
      case OPT_TIMESTAMPS:
        if (len !== 10) return null;
        o.timestamps = { value: readU32(b, i + 2), echo: readU32(b, i + 6) };
        break;
    }
    i += len;
  }
  return o;
}

/**
 * Header length for `options`. Options are laid out as Linux does, each group
 * padded with NOPs to 32 bits so the fields stay aligned: MSS, SACK-permitted
 * and timestamps (sharing one group when both are present), window scale,
 * SACK blocks. Throws when they exceed 40 bytes (a caller's bug, e.g. four
 * SACK blocks with timestamps).
 */
export function tcpHeaderLength(o: TcpOptions): number {
  let n = TCP_HEADER_LEN;
  if (o.mss !== undefined) n += 4;
  if (o.timestamps) n += 12;
  else if (o.sackPermitted) n += 4;
  if (o.windowScale !== undefined) n += 4;
  if (o.sackBlocks?.length) n += 4 + 8 * o.sackBlocks.length;
  if (n > TCP_MAX_HEADER_LEN) throw new RangeError(`TCP options take ${n - TCP_HEADER_LEN} bytes, more than 40`);
  return n;
}

/**
 * Writes the header, options included, in front of a payload already in place
 * at `offset + tcpHeaderLength(h.options)` of `out`, and the checksum over
 * the pseudo-header, header and payload; with `offload` (loopback) only the
 * pseudo-header's partial sum, as Linux leaves it for the device.
 */
export function emitTcpHeader(
  h: TcpHeader,
  src: Ipv4Address,
  dst: Ipv4Address,
  payloadLength: number,
  out: Uint8Array,
  offset = 0,
  offload = false,
): void {
  // Written at offset + k, with no view, closure or array made: this runs for every segment sent.
  const o = offset;
  const headerLength = tcpHeaderLength(h.options);
  const length = headerLength + payloadLength;
  out[o] = h.srcPort >> 8;
  out[o + 1] = h.srcPort & 0xff;
  out[o + 2] = h.dstPort >> 8;
  out[o + 3] = h.dstPort & 0xff;
  writeU32(out, o + 4, h.seq);
  writeU32(out, o + 8, h.ack);
  out[o + 12] = (headerLength / 4) << 4;
  out[o + 13] = h.flags;
  out[o + 14] = h.window >> 8;
  out[o + 15] = h.window & 0xff;
  out[o + 16] = 0;
  out[o + 17] = 0;
  out[o + 18] = h.urgentPointer >> 8;
  out[o + 19] = h.urgentPointer & 0xff;
  emitOptions(h.options, out, o + TCP_HEADER_LEN);
  const pseudo = pseudoHeaderSum(src, dst, IPPROTO_TCP, length);
  const sum = offload ? partialChecksum(pseudo) : finishChecksum(sumWords(out, pseudo, o, o + length));
  out[o + 16] = sum >> 8;
  out[o + 17] = sum & 0xff;
}

/** Writes the options from `at` on, in the layout tcpHeaderLength counts. */
function emitOptions(o: TcpOptions, b: Uint8Array, at: number): void {
  let i = at;
  if (o.mss !== undefined) {
    b[i++] = OPT_MSS;
    b[i++] = 4;
    b[i++] = o.mss >> 8;
    b[i++] = o.mss & 0xff;
  }
  if (o.timestamps) {
    // SACK-permitted fills the two bytes that would otherwise be NOPs.
    b[i++] = o.sackPermitted ? OPT_SACK_PERMITTED : OPT_NOP;
    b[i++] = o.sackPermitted ? 2 : OPT_NOP;
    b[i++] = OPT_TIMESTAMPS;
    b[i++] = 10;
    writeU32(b, i, o.timestamps.value);
    writeU32(b, i + 4, o.timestamps.echo);
    i += 8;
  } else if (o.sackPermitted) {
    b[i++] = OPT_NOP;
    b[i++] = OPT_NOP;
    b[i++] = OPT_SACK_PERMITTED;
    b[i++] = 2;
  }
  if (o.windowScale !== undefined) {
    b[i++] = OPT_NOP;
    b[i++] = OPT_WINDOW_SCALE;
    b[i++] = 3;
    b[i++] = o.windowScale;
  }
  const blocks = o.sackBlocks;
  if (blocks !== undefined && blocks.length > 0) {
    b[i++] = OPT_NOP;
    b[i++] = OPT_NOP;
    b[i++] = OPT_SACK;
    b[i++] = 2 + 8 * blocks.length;
    for (let k = 0; k < blocks.length; k++) {
      writeU32(b, i, blocks[k]!.left);
      writeU32(b, i + 4, blocks[k]!.right);
      i += 8;
    }
  }
}
