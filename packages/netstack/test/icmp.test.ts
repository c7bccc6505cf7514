import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  emitIcmp,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_FRAGMENTATION_NEEDED,
  ICMP_PORT_UNREACHABLE,
  ICMP_TIME_EXCEEDED,
  ICMP_TTL_EXCEEDED,
  icmpLength,
  icmpQuote,
  parseIcmp,
  type IcmpMessage,
} from '../src/wire/icmp.js';
import { internetChecksum } from '../src/wire/checksum.js';
import { atOffset, hex } from './hex.js';

// Checksum by hand: 0x0800 + 0x0000 + 0x1234 + 0x0001 + 0x6162 + 0x6364 = 0xdefb; complemented 0x2104.
const GOLDEN_ECHO = hex(`
  08       # type 8 (echo request)
  00       # code 0
  21 04    # checksum
  12 34    # identifier
  00 01    # sequence number 1
  61 62 63 64  # data "abcd"
`);

// The 0xb861 header of ipv4.test.ts (192.168.0.1 -> 192.168.0.199, UDP, DF, 115 bytes) and its UDP header.
const ORIGINAL = hex(`
  45 00 00 73  00 00 40 00  40 11 b8 61  c0 a8 00 01  c0 a8 00 c7   # IPv4 header
  04 d2 00 35  00 5f 00 00                                          # UDP: 1234 -> 53, length 95, no checksum
`);

// Checksum by hand. A valid IPv4 header sums to 0xffff, ones'-complement zero, so the quoted header adds nothing:
//   0x0304 + 0x0000 + 0x05dc + 0x04d2 + 0x0035 + 0x005f + 0x0000 = 0x0e46; complemented 0xf1b9.
const GOLDEN_FRAG_NEEDED = hex(`
  03       # type 3 (destination unreachable)
  04       # code 4 (fragmentation needed and DF set)
  f1 b9    # checksum
  00 00    # unused
  05 dc    # next-hop MTU 1500 (RFC 1191)
`);
const GOLDEN_UNREACHABLE = new Uint8Array([...GOLDEN_FRAG_NEEDED, ...ORIGINAL]);

describe('ICMP golden', () => {
  it('parses an echo request', () => {
    expect(parseIcmp(atOffset(GOLDEN_ECHO))).toEqual({
      ok: true,
      value: { type: ICMP_ECHO_REQUEST, id: 0x1234, seq: 1, data: hex('61 62 63 64') },
    });
  });

  it('emits the same echo request', () => {
    const msg: IcmpMessage = { type: ICMP_ECHO_REQUEST, id: 0x1234, seq: 1, data: hex('61 62 63 64') };
    const out = new Uint8Array(icmpLength(msg));
    emitIcmp(msg, out);
    expect(out).toEqual(GOLDEN_ECHO);
  });

  it('parses fragmentation needed with its next-hop MTU and quote', () => {
    expect(parseIcmp(GOLDEN_UNREACHABLE)).toEqual({
      ok: true,
      value: { type: ICMP_DEST_UNREACHABLE, code: ICMP_FRAGMENTATION_NEEDED, nextHopMtu: 1500, original: ORIGINAL },
    });
  });

  it('emits the same fragmentation needed', () => {
    const msg: IcmpMessage = { type: ICMP_DEST_UNREACHABLE, code: ICMP_FRAGMENTATION_NEEDED, nextHopMtu: 1500, original: ORIGINAL };
    const out = new Uint8Array(2 + icmpLength(msg)).fill(0xee);
    emitIcmp(msg, out, 2);
    expect(out.subarray(2)).toEqual(GOLDEN_UNREACHABLE);
    expect(out.subarray(0, 2)).toEqual(hex('ee ee'));
  });

  it('reads the MTU only for code 4, and writes zeros in the unused field otherwise', () => {
    const msg: IcmpMessage = { type: ICMP_DEST_UNREACHABLE, code: ICMP_PORT_UNREACHABLE, nextHopMtu: 1500, original: ORIGINAL };
    const out = new Uint8Array(icmpLength(msg));
    emitIcmp(msg, out);
    expect(out.subarray(4, 8)).toEqual(hex('00 00 00 00'));
    expect(parseIcmp(out)).toEqual({ ok: true, value: { ...msg, nextHopMtu: 0 } });
  });

  it('quotes the original header, options included, and 8 bytes of payload', () => {
    const packet = new Uint8Array(115);
    packet.set(ORIGINAL);
    expect(icmpQuote(packet)).toEqual(ORIGINAL);
    const withOptions = new Uint8Array(40);
    withOptions[0] = 0x46;
    expect(icmpQuote(withOptions).length).toBe(32);
    expect(icmpQuote(withOptions.subarray(0, 30)).length).toBe(30); // never past the end
  });
});

describe('ICMP round trip', () => {
  it('parse(emit(x)) == x for echo, unreachable and time exceeded', () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    const quote = fc.uint8Array({ minLength: 28, maxLength: 64 });
    const msg: fc.Arbitrary<IcmpMessage> = fc.oneof(
      fc.record({
        type: fc.constantFrom(ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY),
        id: u16,
        seq: u16,
        data: fc.uint8Array({ maxLength: 64 }),
      }),
      fc
        .record({ type: fc.constant(ICMP_DEST_UNREACHABLE), code: fc.nat(15), nextHopMtu: u16, original: quote })
        // The MTU field exists for code 4 only.
        .map((m) => ({ ...m, nextHopMtu: m.code === ICMP_FRAGMENTATION_NEEDED ? m.nextHopMtu : 0 })),
      fc.record({ type: fc.constant(ICMP_TIME_EXCEEDED), code: fc.constantFrom(ICMP_TTL_EXCEEDED, 1), original: quote }),
    );
    fc.assert(
      fc.property(msg, (m) => {
        const out = new Uint8Array(icmpLength(m));
        emitIcmp(m, out);
        expect(parseIcmp(out)).toEqual({ ok: true, value: m });
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});

describe('ICMP drop reasons', () => {
  /** A message of `type` with a body of zeros and a correct checksum. */
  function withType(type: number, bodyLength: number): Uint8Array {
    const out = new Uint8Array(8 + bodyLength);
    out[0] = type;
    const sum = internetChecksum(out);
    out[2] = sum >> 8;
    out[3] = sum & 0xff;
    return out;
  }

  it('keeps a valid checksum in the helper', () => {
    expect(parseIcmp(withType(ICMP_ECHO_REPLY, 0)).ok).toBe(true);
  });

  const cases: [string, Uint8Array, string][] = [
    ['7 bytes', GOLDEN_ECHO.subarray(0, 7), 'icmp.truncated'],
    ['unreachable quoting 27 bytes', withType(ICMP_DEST_UNREACHABLE, 27), 'icmp.truncated'],
    ['time exceeded quoting nothing', withType(ICMP_TIME_EXCEEDED, 0), 'icmp.truncated'],
    ['a flipped data bit', Object.assign(GOLDEN_ECHO.slice(), { 8: 0x60 }), 'icmp.checksum'],
    ['a dropped last byte', GOLDEN_ECHO.subarray(0, 11), 'icmp.checksum'],
    ['type 13 (timestamp)', withType(13, 12), 'icmp.unknownType'],
    ['type 5 (redirect)', withType(5, 28), 'icmp.unknownType'],
  ];
  it.each(cases)('%s', (_name, bytes, reason) => {
    expect(parseIcmp(bytes)).toEqual({ ok: false, reason });
  });
});
