/** Ethernet II header: parse, emit with the minimum-frame padding. */
import { readU32, writeU32, type ParseResult } from './ipv4.js';

/** A MAC address as a 48-bit unsigned number: like IPv4 addresses, it compares with === and keys a Map. */
export type MacAddress = number;

export const ETHERNET_HEADER_LEN = 14;
/** The smallest frame on the wire without its FCS (64 bytes with it); shorter ones are padded. */
export const ETHERNET_MIN_FRAME_LEN = 60;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const MAC_BROADCAST: MacAddress = 0xffffffffffff;

export interface EthernetHeader {
  dst: MacAddress;
  src: MacAddress;
  ethertype: number;
}

export interface EthernetFrame extends EthernetHeader {
  /** Everything after the header, padding included: the layer above trims by its own length field. */
  payload: Uint8Array;
}

export type EthernetDropReason = 'ethernet.truncated';

export function parseMacAddress(text: string): MacAddress {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(text)) throw new RangeError(`not a MAC address: ${text}`);
  return parseInt(text.replaceAll(':', ''), 16);
}

export function formatMacAddress(mac: MacAddress): string {
  return mac.toString(16).padStart(12, '0').match(/../g)!.join(':');
}

// 48 bits exceed JavaScript's 32-bit bitwise operators, so the top 16 bits go by arithmetic.
export function readMac(b: Uint8Array, i: number): MacAddress {
  return ((b[i]! << 8) | b[i + 1]!) * 2 ** 32 + readU32(b, i + 2);
}

export function writeMac(b: Uint8Array, i: number, mac: MacAddress): void {
  const high = Math.floor(mac / 2 ** 32);
  b[i] = high >> 8;
  b[i + 1] = high & 0xff;
  writeU32(b, i + 2, mac >>> 0);
}

/**
 * Frames shorter than 60 bytes are accepted: virtual links and captures of
 * outgoing traffic carry them unpadded.
 */
export function parseEthernet(buf: Uint8Array): ParseResult<EthernetFrame, EthernetDropReason> {
  if (buf.length < ETHERNET_HEADER_LEN) return { ok: false, reason: 'ethernet.truncated' };
  return {
    ok: true,
    value: {
      dst: readMac(buf, 0),
      src: readMac(buf, 6),
      ethertype: (buf[12]! << 8) | buf[13]!,
      payload: buf.subarray(ETHERNET_HEADER_LEN),
    },
  };
}

/** Bytes a frame carrying `payloadLength` bytes occupies, padding included. */
export function ethernetFrameLength(payloadLength: number): number {
  return Math.max(ETHERNET_MIN_FRAME_LEN, ETHERNET_HEADER_LEN + payloadLength);
}

/**
 * Writes the header in front of a payload already in place at `offset + 14`
 * of `out` and zeroes the padding, so a short frame never carries stale bytes
 * of a reused buffer. `out` must hold `ethernetFrameLength(payloadLength)`
 * bytes from `offset`. Returns the frame length.
 */
export function emitEthernetHeader(h: EthernetHeader, payloadLength: number, out: Uint8Array, offset = 0): number {
  const length = ethernetFrameLength(payloadLength);
  if (out.length < offset + length) throw new RangeError(`an Ethernet frame of ${length} bytes does not fit`);
  writeMac(out, offset, h.dst);
  writeMac(out, offset + 6, h.src);
  out[offset + 12] = h.ethertype >> 8;
  out[offset + 13] = h.ethertype & 0xff;
  out.fill(0, offset + ETHERNET_HEADER_LEN + payloadLength, offset + length);
  return length;
}

/** A new frame around a copy of `payload`, for callers without a buffer of their own. */
export function emitEthernetFrame(h: EthernetHeader, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(ethernetFrameLength(payload.length));
  out.set(payload, ETHERNET_HEADER_LEN);
  emitEthernetHeader(h, payload.length, out);
  return out;
}
