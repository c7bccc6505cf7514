import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { emitIpv4Header, IPPROTO_UDP, IPV4_HEADER_LEN, parseIpv4, readU32, writeU32, type Ipv4Header } from '../src/wire/ipv4.js';
import { internetChecksum } from '../src/wire/checksum.js';
import { atOffset, hex } from './hex.js';

// A well-known header (192.168.0.1 -> 192.168.0.199, UDP, 115 bytes) whose checksum is 0xb861:
//   0x4500 + 0x0073 + 0x0000 + 0x4000 + 0x4011 + 0xc0a8 + 0x0001 + 0xc0a8 + 0x00c7 = 0x2479c
//   folded: 0x479c + 0x2 = 0x479e; complemented: 0xb861.
const GOLDEN_HEADER = hex(`
  45           # version 4, IHL 5 (20 bytes)
  00           # DSCP 0, ECN 0
  00 73        # total length 115
  00 00        # identification 0
  40 00        # flags DF, fragment offset 0
  40           # TTL 64
  11           # protocol 17 (UDP)
  b8 61        # header checksum
  c0 a8 00 01  # source 192.168.0.1
  c0 a8 00 c7  # destination 192.168.0.199
`);
const GOLDEN_FIELDS: Ipv4Header = {
  dscpEcn: 0,
  identification: 0,
  dontFragment: true,
  moreFragments: false,
  fragmentOffset: 0,
  ttl: 64,
  protocol: IPPROTO_UDP,
  src: 0xc0a80001,
  dst: 0xc0a800c7,
};

function goldenPacket(): Uint8Array {
  const packet = new Uint8Array(115).fill(0x5a);
  packet.set(GOLDEN_HEADER);
  return packet;
}

describe('IPv4 golden', () => {
  it('parses the 0xb861 header', () => {
    const r = parseIpv4(atOffset(goldenPacket()));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject(GOLDEN_FIELDS);
    expect(r.value.headerLength).toBe(20);
    expect(r.value.payload.length).toBe(95);
  });

  it('emits the same bytes, checksum 0xb861 included', () => {
    const out = new Uint8Array(IPV4_HEADER_LEN + 95);
    emitIpv4Header(GOLDEN_FIELDS, 95, out);
    expect(out.subarray(0, IPV4_HEADER_LEN)).toEqual(GOLDEN_HEADER);
  });

  it('emits at an offset without touching the bytes around it', () => {
    const out = new Uint8Array(4 + IPV4_HEADER_LEN + 95).fill(0xee);
    emitIpv4Header(GOLDEN_FIELDS, 95, out, 4);
    expect(out.subarray(0, 4)).toEqual(hex('ee ee ee ee'));
    expect(out.subarray(4, 24)).toEqual(GOLDEN_HEADER);
  });

  it('skips options and trims link-layer padding', () => {
    // IHL 6: one word of options (four NOPs); total length 28, then 4 bytes of padding.
    const p = hex(`
      46 00 00 1c  00 01 00 00  40 06 00 00  0a 00 00 01  0a 00 00 02
      01 01 01 01        # options
      de ad be ef        # payload
      00 00 00 00        # link padding
    `);
    const sum = internetChecksum(p.subarray(0, 24));
    p[10] = sum >> 8;
    p[11] = sum & 0xff;
    const r = parseIpv4(p);
    expect(r.ok && r.value.headerLength).toBe(24);
    expect(r.ok && r.value.payload).toEqual(hex('de ad be ef'));
  });

  it('reads fragment fields', () => {
    const out = new Uint8Array(28);
    emitIpv4Header({ ...GOLDEN_FIELDS, dontFragment: false, moreFragments: true, fragmentOffset: 1480 }, 8, out);
    expect(out.subarray(6, 8)).toEqual(hex('20 b9')); // MF | 1480 / 8 = 185 = 0xb9
    const r = parseIpv4(out);
    expect(r.ok && r.value).toMatchObject({ moreFragments: true, dontFragment: false, fragmentOffset: 1480 });
  });

  it('reads and writes u32 fields', () => {
    const b = new Uint8Array(4);
    writeU32(b, 0, 0xfedcba98);
    expect(b).toEqual(hex('fe dc ba 98'));
    expect(readU32(b, 0)).toBe(0xfedcba98);
  });
});

describe('IPv4 round trip', () => {
  it('parse(emit(h)) == h', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const header = fc.record({
      dscpEcn: fc.integer({ min: 0, max: 255 }),
      identification: fc.integer({ min: 0, max: 0xffff }),
      dontFragment: fc.boolean(),
      moreFragments: fc.boolean(),
      fragmentOffset: fc.integer({ min: 0, max: 0x1fff }).map((n) => n * 8),
      ttl: fc.integer({ min: 0, max: 255 }),
      protocol: fc.integer({ min: 0, max: 255 }),
      src: u32,
      dst: u32,
    });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 64 }), (h, payload) => {
        const out = new Uint8Array(IPV4_HEADER_LEN + payload.length);
        out.set(payload, IPV4_HEADER_LEN);
        emitIpv4Header(h, payload.length, out);
        const r = parseIpv4(out);
        expect(r).toEqual({ ok: true, value: { ...h, headerLength: IPV4_HEADER_LEN, payload } });
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});

describe('IPv4 with a tail (a gathered packet: its payload partly in another array)', () => {
  const header = { dscpEcn: 0, identification: 1, dontFragment: true, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol: 6, src: 1, dst: 2 };
  const head = new Uint8Array(IPV4_HEADER_LEN + 32);
  emitIpv4Header(header, 32 + 1000, head);

  it('reads the part of the payload in the first array; the total length counts the tail', () => {
    const p = parseIpv4(head, 1000);
    expect(p.ok && p.value.payload.length).toBe(32);
  });

  it('drops it when head and tail do not add up to the total length', () => {
    expect(parseIpv4(head, 999)).toEqual({ ok: false, reason: 'ipv4.totalLength' });
    expect(parseIpv4(head, 1001)).toEqual({ ok: false, reason: 'ipv4.totalLength' });
    expect(parseIpv4(head)).toEqual({ ok: false, reason: 'ipv4.totalLength' });
  });
});

describe('IPv4 drop reasons', () => {
  const cases: [string, (p: Uint8Array) => Uint8Array, string][] = [
    ['shorter than a header', (p) => p.subarray(0, 19), 'ipv4.truncated'],
    ['version 6', (p) => ((p[0] = 0x65), p), 'ipv4.version'],
    ['IHL 4', (p) => ((p[0] = 0x44), p), 'ipv4.headerLength'],
    ['IHL past the buffer', (p) => ((p[0] = 0x4f), p.subarray(0, 40)), 'ipv4.headerLength'],
    ['total length below the header', (p) => ((p[2] = 0), (p[3] = 19), p), 'ipv4.totalLength'],
    ['total length past the buffer', (p) => p.subarray(0, 114), 'ipv4.totalLength'],
    ['a flipped bit', (p) => ((p[8] ^= 0x01), p), 'ipv4.checksum'],
  ];
  it.each(cases)('%s', (_name, mutate, reason) => {
    expect(parseIpv4(mutate(goldenPacket()))).toEqual({ ok: false, reason });
  });
});
