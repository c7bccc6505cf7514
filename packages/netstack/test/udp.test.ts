import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { emitUdpHeader, parseUdp, UDP_HEADER_LEN } from '../src/wire/udp.js';
import { atOffset, hex } from './hex.js';

const SRC = 0xc0a80001; // 192.168.0.1
const DST = 0xc0a800c7; // 192.168.0.199

// Checksum by hand:
//   pseudo-header: 0xc0a8 + 0x0001 + 0xc0a8 + 0x00c7 + 0x0011 (UDP) + 0x000a (length) = 0x18233
//   UDP words:     0x04d2 + 0x0035 + 0x000a + 0x0000 (checksum) + 0x6869 ("hi")       = 0x06d7a
//   0x18233 + 0x06d7a = 0x1efad; folded 0xefae; complemented 0x1051.
const GOLDEN = hex(`
  04 d2   # source port 1234
  00 35   # destination port 53
  00 0a   # length 10
  10 51   # checksum
  68 69   # payload "hi"
`);

describe('UDP golden', () => {
  it('parses ports, payload and a hand-computed checksum', () => {
    const r = parseUdp(atOffset(GOLDEN), SRC, DST);
    expect(r).toEqual({ ok: true, value: { srcPort: 1234, dstPort: 53, payload: hex('68 69') } });
  });

  it('emits the same bytes', () => {
    const out = new Uint8Array(10);
    out.set(hex('68 69'), UDP_HEADER_LEN);
    emitUdpHeader(1234, 53, SRC, DST, 2, out);
    expect(out).toEqual(GOLDEN);
  });

  it('accepts checksum 0 (none computed) and trims to the length field', () => {
    const p = hex('04 d2 00 35 00 09 00 00 68 ff ff');
    expect(parseUdp(p, SRC, DST)).toEqual({ ok: true, value: { srcPort: 1234, dstPort: 53, payload: hex('68') } });
  });

  it('sends a computed 0 as 0xffff', () => {
    // Everything but the payload word sums to 0x18233 + 0x04d2 + 0x0035 + 0x000a = 0x18744, folded 0x8745;
    // the payload word 0xffff - 0x8745 brings the sum to 0xffff, whose complement is 0.
    const word = 0xffff - 0x8745;
    const out = new Uint8Array(10);
    out[8] = word >> 8;
    out[9] = word & 0xff;
    emitUdpHeader(1234, 53, SRC, DST, 2, out);
    expect(out.subarray(6, 8)).toEqual(hex('ff ff'));
    expect(parseUdp(out, SRC, DST).ok).toBe(true);
  });
});

describe('UDP round trip', () => {
  it('parse(emit(x)) == x', () => {
    const port = fc.integer({ min: 0, max: 0xffff });
    const addr = fc.integer({ min: 0, max: 0xffffffff });
    fc.assert(
      fc.property(port, port, addr, addr, fc.uint8Array({ maxLength: 64 }), (sp, dp, src, dst, payload) => {
        const out = new Uint8Array(UDP_HEADER_LEN + payload.length);
        out.set(payload, UDP_HEADER_LEN);
        emitUdpHeader(sp, dp, src, dst, payload.length, out);
        expect(parseUdp(out, src, dst)).toEqual({ ok: true, value: { srcPort: sp, dstPort: dp, payload } });
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});

describe('UDP drop reasons', () => {
  const copy = () => GOLDEN.slice();
  const cases: [string, Uint8Array, string][] = [
    ['shorter than a header', GOLDEN.subarray(0, 7), 'udp.truncated'],
    ['length below the header', Object.assign(copy(), { 5: 7 }), 'udp.length'],
    ['length past the buffer', Object.assign(copy(), { 5: 11 }), 'udp.length'],
    ['a flipped payload bit', Object.assign(copy(), { 9: 0x68 }), 'udp.checksum'],
    ['the wrong pseudo-header', GOLDEN, 'udp.checksum'],
  ];
  it.each(cases)('%s', (name, bytes, reason) => {
    const dst = name === 'the wrong pseudo-header' ? DST + 1 : DST;
    expect(parseUdp(bytes, SRC, dst)).toEqual({ ok: false, reason });
  });
});
