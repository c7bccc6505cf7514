import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  parsePcap,
  PCAP_LINKTYPE_ETHERNET,
  PCAP_LINKTYPE_RAW,
  pcapFileHeader,
  pcapRecord,
} from '../src/pcap.js';
import { parseIpv4Address } from '../src/wire/address.js';
import { emitEthernetHeader, ETHERNET_HEADER_LEN, ethernetFrameLength, ETHERTYPE_IPV4 } from '../src/wire/ethernet.js';
import { emitIpv4Header, IPPROTO_UDP, IPV4_HEADER_LEN } from '../src/wire/ipv4.js';
import { emitUdpHeader, UDP_HEADER_LEN } from '../src/wire/udp.js';
import { hex } from './hex.js';

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const GOLDEN_HEADER = hex(`
  d4 c3 b2 a1   # magic 0xa1b2c3d4, little-endian: microsecond timestamps
  02 00 04 00   # version 2.4
  00 00 00 00   # thiszone
  00 00 00 00   # sigfigs
  ff ff 00 00   # snaplen 65535
  01 00 00 00   # network: LINKTYPE_ETHERNET
`);

// 1700000000123.456 ms = 2023-11-14T22:13:20.123456Z
const GOLDEN_RECORD = hex(`
  00 f1 53 65   # ts_sec 1700000000
  40 e2 01 00   # ts_usec 123456
  04 00 00 00   # incl_len 4
  04 00 00 00   # orig_len 4
  de ad be ef   # the frame
`);

describe('pcap golden', () => {
  it('writes the file header', () => {
    expect(pcapFileHeader(PCAP_LINKTYPE_ETHERNET)).toEqual(GOLDEN_HEADER);
    expect(pcapFileHeader(PCAP_LINKTYPE_RAW, 262144)).toEqual(hex('d4c3b2a1 0200 0400 00000000 00000000 00000400 65000000'));
  });

  it('writes a record with its timestamp split into seconds and microseconds', () => {
    expect(pcapRecord(1700000000123.456, hex('de ad be ef'))).toEqual(GOLDEN_RECORD);
  });

  it('rounds the timestamp to the microsecond, carrying into the seconds', () => {
    const usec = (ms: number) => new DataView(pcapRecord(ms, new Uint8Array(0)).buffer).getUint32(4, true);
    const sec = (ms: number) => new DataView(pcapRecord(ms, new Uint8Array(0)).buffer).getUint32(0, true);
    expect(usec(0.0004)).toBe(0);
    expect(usec(0.0006)).toBe(1);
    expect([sec(1999.9996), usec(1999.9996)]).toEqual([2, 0]);
    expect([sec(0xffffffff * 1000), usec(0xffffffff * 1000)]).toEqual([0xffffffff, 0]);
  });

  it('parses the golden file', () => {
    const file = parsePcap(concat(GOLDEN_HEADER, GOLDEN_RECORD));
    expect(file.linktype).toBe(PCAP_LINKTYPE_ETHERNET);
    expect(file.snaplen).toBe(65535);
    expect(file.records).toHaveLength(1);
    expect(file.records[0]!.timestampMs).toBeCloseTo(1700000000123.456, 6);
    expect(file.records[0]!.bytes).toEqual(hex('de ad be ef'));
    expect(file.records[0]!.originalLength).toBe(4);
  });
});

describe('pcap round trip', () => {
  it('reads back what it wrote, in order', () => {
    const frames = [new Uint8Array(0), hex('45 00 00 14'), Uint8Array.from({ length: 1500 }, (_, i) => i & 0xff)];
    const times = [0, 1.001, 1_700_000_000_000.5];
    const file = concat(pcapFileHeader(PCAP_LINKTYPE_RAW), ...frames.map((f, i) => pcapRecord(times[i]!, f)));
    const read = parsePcap(file);
    expect(read.linktype).toBe(PCAP_LINKTYPE_RAW);
    expect(read.records.map((r) => r.bytes)).toEqual(frames);
    expect(read.records.map((r) => r.originalLength)).toEqual([0, 4, 1500]);
    read.records.forEach((r, i) => expect(Math.round(r.timestampMs * 1000)).toBe(Math.round(times[i]! * 1000)));
  });

  it('truncates frames to the snaplen and keeps their original length', () => {
    const frame = Uint8Array.from({ length: 100 }, (_, i) => i);
    const record = pcapRecord(5, frame, 64);
    expect(record.length).toBe(16 + 64);
    expect(record.subarray(8, 16)).toEqual(hex('40000000 64000000'));
    const read = parsePcap(concat(pcapFileHeader(PCAP_LINKTYPE_ETHERNET, 64), record, pcapRecord(6, frame.subarray(0, 10), 64)));
    expect(read.snaplen).toBe(64);
    expect(read.records[0]!.bytes).toEqual(frame.subarray(0, 64));
    expect(read.records[0]!.originalLength).toBe(100);
    expect(read.records[1]!.bytes).toEqual(frame.subarray(0, 10));
  });

  it('reads big-endian and nanosecond files as libpcap writes them elsewhere', () => {
    const bigEndianMicros = hex(`
      a1 b2 c3 d4  0002 0004  00000000 00000000  0000ffff  00000065
      00000001 0007a120 00000002 00000002  aa bb
    `);
    const littleEndianNanos = hex(`
      4d 3c b2 a1  0200 0400  00000000 00000000  ffff0000  01000000
      01000000 15cd5b07 01000000 01000000  cc
    `);
    const be = parsePcap(bigEndianMicros);
    expect(be.linktype).toBe(PCAP_LINKTYPE_RAW);
    expect(be.records).toEqual([{ timestampMs: 1500, bytes: hex('aa bb'), originalLength: 2 }]);
    const ns = parsePcap(littleEndianNanos);
    expect(ns.records[0]!.timestampMs).toBeCloseTo(1123.456789, 9);
  });

  it('reads a view into a larger buffer', () => {
    const file = concat(GOLDEN_HEADER, GOLDEN_RECORD);
    const backing = new Uint8Array(file.length + 7).fill(0xee);
    backing.set(file, 3);
    expect(parsePcap(backing.subarray(3, 3 + file.length)).records[0]!.bytes).toEqual(hex('de ad be ef'));
  });
});

describe('pcap errors', () => {
  const withHeader = (record: string) => concat(GOLDEN_HEADER, hex(record));

  it.each<[string, Uint8Array, RegExp]>([
    ['an empty input', new Uint8Array(0), /shorter than the 24-byte file header/],
    ['a bad magic', concat(hex('00 00 00 00'), GOLDEN_HEADER.subarray(4)), /bad magic number 0x00000000/],
    ['pcapng', concat(hex('0a 0d 0d 0a'), GOLDEN_HEADER.subarray(4)), /pcapng files are not supported/],
    ['version 1.0', concat(GOLDEN_HEADER.subarray(0, 4), hex('0100 0000'), GOLDEN_HEADER.subarray(8)), /version 1\.0/],
    ['a truncated record header', withHeader('00000000 00000000'), /truncated record header at offset 24: 8 of 16/],
    ['a truncated record', withHeader('00000000 00000000 04000000 04000000 aabb'), /truncated record at offset 24: 2 of 4/],
    ['a record over the snaplen', withHeader('00000000 00000000 00000100 00000100'), /65536 bytes captured exceeds the snaplen 65535/],
    ['a record longer than its frame', withHeader('00000000 00000000 02000000 01000000 aabb'), /exceeds the original length 1/],
    ['microseconds over a second', withHeader('00000000 40420f00 00000000 00000000'), /sub-second field 1000000/],
  ])('rejects %s', (_, bytes, message) => {
    expect(() => parsePcap(bytes)).toThrow(message);
  });

  it('accepts a header with no records', () => {
    expect(parsePcap(GOLDEN_HEADER).records).toEqual([]);
  });

  it('refuses to write what the format cannot hold', () => {
    expect(() => pcapRecord(-1, new Uint8Array(1))).toThrow(RangeError);
    expect(() => pcapRecord(NaN, new Uint8Array(1))).toThrow(RangeError);
    expect(() => pcapRecord(2 ** 32 * 1000, new Uint8Array(1))).toThrow(RangeError);
    expect(() => pcapRecord(0, new Uint8Array(1), 0)).toThrow(/snaplen/);
    expect(() => pcapFileHeader(1, 1.5)).toThrow(/snaplen/);
    expect(() => pcapFileHeader(-1)).toThrow(/linktype/);
  });
});

/** An Ethernet frame carrying an IPv4/UDP datagram, built with the stack's own emitters. */
function udpFrame(dstPort: number, payload: Uint8Array): Uint8Array {
  const src = parseIpv4Address('10.0.0.1');
  const dst = parseIpv4Address('10.0.0.2');
  const ipLength = IPV4_HEADER_LEN + UDP_HEADER_LEN + payload.length;
  const frame = new Uint8Array(ethernetFrameLength(ipLength));
  const ip = ETHERNET_HEADER_LEN;
  frame.set(payload, ip + IPV4_HEADER_LEN + UDP_HEADER_LEN);
  emitUdpHeader(40000, dstPort, src, dst, payload.length, frame, ip + IPV4_HEADER_LEN);
  emitIpv4Header(
    {
      dscpEcn: 0,
      identification: 1,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: IPPROTO_UDP,
      src,
      dst,
    },
    UDP_HEADER_LEN + payload.length,
    frame,
    ip,
  );
  emitEthernetHeader({ dst: 0x525400000002, src: 0x525400000001, ethertype: ETHERTYPE_IPV4 }, ipLength, frame);
  return frame;
}

function onPath(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** tshark warns on stderr whenever it runs as root (as in containers); that line says nothing about the file. */
const ROOT_WARNING = /^Running as user "root" and group "root"\. This could be dangerous\.$/;

describe('pcap read by Wireshark', () => {
  it.skipIf(!onPath('tshark'))('tshark decodes a captured Ethernet/IPv4/UDP frame without complaint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moat-pcap-'));
    try {
      const file = join(dir, 'udp.pcap');
      const frames = [udpFrame(5353, new TextEncoder().encode('hello moat')), udpFrame(9, new Uint8Array(0))];
      writeFileSync(file, concat(pcapFileHeader(PCAP_LINKTYPE_ETHERNET), ...frames.map((f, i) => pcapRecord(1_700_000_000_000 + i, f))));
      const fields = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'udp.dstport', '-e', 'udp.checksum.status', '-e', 'ip.checksum.status', '-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE'], {
        encoding: 'utf8',
      });
      const stderr = fields.stderr.split('\n').filter((line) => line !== '' && !ROOT_WARNING.test(line));
      expect(stderr).toEqual([]);
      expect(fields.status).toBe(0);
      // Checksum status 1 is Wireshark's "Good": the emitters' checksums verify too.
      expect(fields.stdout.trim().split('\n')).toEqual(['5353\t1\t1', '9\t1\t1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!onPath('capinfos'))('capinfos agrees on the link type and the number of packets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moat-pcap-'));
    try {
      const file = join(dir, 'raw.pcap');
      const ipPacket = udpFrame(53, new Uint8Array(3)).subarray(ETHERNET_HEADER_LEN, ETHERNET_HEADER_LEN + 31);
      writeFileSync(file, concat(pcapFileHeader(PCAP_LINKTYPE_RAW), pcapRecord(1, ipPacket), pcapRecord(2, ipPacket)));
      const info = spawnSync('capinfos', ['-T', '-c', '-E', file], { encoding: 'utf8' });
      expect(info.status).toBe(0);
      const [, row] = info.stdout.trim().split('\n');
      const [, encapsulation, packets] = row!.split('\t');
      expect(encapsulation).toMatch(/^raw ?ip$/i); // 'rawip' in Wireshark 4, 'Raw IP' in older ones
      expect(packets).toBe('2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
