/**
 * Capture files in the classic libpcap format (not pcapng), which tcpdump,
 * Wireshark and tshark all read: a 24-byte file header, then a 16-byte header
 * before each frame. Written little-endian with microsecond timestamps, as
 * libpcap does on the machines we run on. Pure functions over bytes: the
 * caller decides where the file goes.
 * Format: https://www.tcpdump.org/manpages/pcap-savefile.5.html
 */

/** Ethernet frames, without preamble or FCS. */
export const PCAP_LINKTYPE_ETHERNET = 1;
/** Bare IPv4 or IPv6 packets, told apart by their version nibble: for the loopback interface. */
export const PCAP_LINKTYPE_RAW = 101;
/** tcpdump's historical default; enough for a 64 KiB loopback packet. */
export const PCAP_DEFAULT_SNAPLEN = 65535;

export const PCAP_FILE_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;

const MAGIC_MICROS = 0xa1b2c3d4;
const MAGIC_NANOS = 0xa1b23c4d;
const PCAPNG_MAGIC = 0x0a0d0d0a;
const U32_MAX = 0xffffffff;

function checkSnaplen(snaplen: number): void {
  if (!(Number.isInteger(snaplen) && snaplen >= 1 && snaplen <= U32_MAX)) {
    throw new RangeError(`snaplen must be an integer between 1 and ${U32_MAX}, got ${snaplen}`);
  }
}

export function pcapFileHeader(linktype: number, snaplen = PCAP_DEFAULT_SNAPLEN): Uint8Array {
  if (!(Number.isInteger(linktype) && linktype >= 0 && linktype <= U32_MAX)) {
    throw new RangeError(`linktype must be an unsigned 32-bit integer, got ${linktype}`);
  }
  checkSnaplen(snaplen);
  const out = new Uint8Array(PCAP_FILE_HEADER_LEN);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC_MICROS, true);
  v.setUint16(4, 2, true); // version 2.4, the only one in use since 1998
  v.setUint16(6, 4, true);
  v.setInt32(8, 0, true); // thiszone: timestamps are UTC
  v.setUint32(12, 0, true); // sigfigs: always 0 in practice
  v.setUint32(16, snaplen, true);
  v.setUint32(20, linktype, true);
  return out;
}

/**
 * One record: header and the frame's first `snaplen` bytes. `orig_len`
 * keeps the full length, so readers show the frame as truncated by capture.
 * The timestamp is rounded to the microsecond.
 */
export function pcapRecord(timestampMs: number, frame: Uint8Array, snaplen = PCAP_DEFAULT_SNAPLEN): Uint8Array {
  checkSnaplen(snaplen);
  const micros = Math.round(timestampMs * 1000);
  const seconds = Math.floor(micros / 1e6);
  // ts_sec is unsigned 32-bit: 1970 to 2106.
  if (!(Number.isFinite(timestampMs) && micros >= 0 && seconds <= U32_MAX)) {
    throw new RangeError(`timestampMs must be ms since the Unix epoch from 1970 to 2106, got ${timestampMs}`);
  }
  if (frame.length > U32_MAX) throw new RangeError(`a frame of ${frame.length} bytes does not fit a pcap record`);
  const included = Math.min(frame.length, snaplen);
  const out = new Uint8Array(PCAP_RECORD_HEADER_LEN + included);
  const v = new DataView(out.buffer);
  v.setUint32(0, seconds, true);
  v.setUint32(4, micros - seconds * 1e6, true);
  v.setUint32(8, included, true);
  v.setUint32(12, frame.length, true);
  out.set(frame.subarray(0, included), PCAP_RECORD_HEADER_LEN);
  return out;
}

export interface PcapRecordRead {
  /** Milliseconds since the Unix epoch, with the file's sub-millisecond precision. */
  timestampMs: number;
  /** The captured bytes (a view into the input), at most snaplen of them. */
  bytes: Uint8Array;
  /** The frame's length on the wire; more than bytes.length when the capture truncated it. */
  originalLength: number;
}

export interface PcapFile {
  /** The link-layer header type (the low 16 bits of the header's network field; the rest carry FCS flags). */
  linktype: number;
  snaplen: number;
  records: PcapRecordRead[];
}

/**
 * Reads a whole classic pcap file, in either byte order, with microsecond or
 * nanosecond timestamps. Throws an Error saying what is wrong and at which
 * offset for anything else: pcapng, a truncated header or record, a record
 * longer than the snaplen or than its frame.
 */
export function parsePcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < PCAP_FILE_HEADER_LEN) {
    throw new Error(`not a pcap file: ${bytes.length} bytes is shorter than the ${PCAP_FILE_HEADER_LEN}-byte file header`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicLE = v.getUint32(0, true);
  const magicBE = v.getUint32(0, false);
  let le: boolean;
  let nanos: boolean;
  if (magicLE === MAGIC_MICROS || magicLE === MAGIC_NANOS) [le, nanos] = [true, magicLE === MAGIC_NANOS];
  else if (magicBE === MAGIC_MICROS || magicBE === MAGIC_NANOS) [le, nanos] = [false, magicBE === MAGIC_NANOS];
  else if (magicLE === PCAPNG_MAGIC) throw new Error('pcapng files are not supported, only classic pcap (convert with editcap -F pcap)');
  else throw new Error(`not a pcap file: bad magic number 0x${magicLE.toString(16).padStart(8, '0')}`);

  const major = v.getUint16(4, le);
  const minor = v.getUint16(6, le);
  if (major !== 2) throw new Error(`unsupported pcap version ${major}.${minor}, expected 2.4`);
  const snaplen = v.getUint32(16, le);
  const linktype = v.getUint32(20, le) & 0xffff;

  const records: PcapRecordRead[] = [];
  let offset = PCAP_FILE_HEADER_LEN;
  while (offset < bytes.length) {
    if (bytes.length - offset < PCAP_RECORD_HEADER_LEN) {
      throw new Error(`truncated record header at offset ${offset}: ${bytes.length - offset} of ${PCAP_RECORD_HEADER_LEN} bytes`);
    }
    const seconds = v.getUint32(offset, le);
    const fraction = v.getUint32(offset + 4, le);
    const included = v.getUint32(offset + 8, le);
    const originalLength = v.getUint32(offset + 12, le);
    if (fraction >= (nanos ? 1e9 : 1e6)) throw new Error(`record at offset ${offset}: sub-second field ${fraction} is out of range`);
    if (included > snaplen) throw new Error(`record at offset ${offset}: ${included} bytes captured exceeds the snaplen ${snaplen}`);
    if (included > originalLength) {
      throw new Error(`record at offset ${offset}: ${included} bytes captured exceeds the original length ${originalLength}`);
    }
    const start = offset + PCAP_RECORD_HEADER_LEN;
    if (bytes.length - start < included) {
      throw new Error(`truncated record at offset ${offset}: ${bytes.length - start} of ${included} bytes`);
    }
    records.push({
      timestampMs: seconds * 1000 + fraction / (nanos ? 1e6 : 1e3),
      bytes: bytes.subarray(start, start + included),
      originalLength,
    });
    offset = start + included;
  }
  return { linktype, snaplen, records };
}
