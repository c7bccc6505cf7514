import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { finishChecksum, pseudoHeaderSum, sumWords } from '../src/wire/checksum.js';
import {
  emitTcpHeader,
  parseTcp,
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_HEADER_LEN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  tcpHeaderLength,
  type TcpHeader,
  type TcpOptions,
} from '../src/wire/tcp.js';
import { atOffset, hex } from './hex.js';

const SRC = 0x0a000001; // 10.0.0.1
const DST = 0x0a000002; // 10.0.0.2

// A SYN laid out as Linux sends it. Checksum by hand:
//   pseudo-header: 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 0x0006 (TCP) + 0x0028 (40 bytes)      = 0x01431
//   header:        0xc000 + 0x0050 + 0x6b8b + 0x4567 + 0x0000 + 0x0000 + 0xa002 + 0xfaf0
//                  + 0x0000 (checksum) + 0x0000 (urgent)                                      = 0x30c34
//   options:       0x0204 + 0x05b4 + 0x0402 + 0x080a + 0x0001 + 0xe240 + 0x0000 + 0x0000
//                  + 0x0103 + 0x0307                                                          = 0x0fa0f
//   total 0x41a74; folded 0x1a74 + 0x4 = 0x1a78; complemented 0xe587.
const GOLDEN_SYN = hex(`
  c0 00         # source port 49152
  00 50         # destination port 80
  6b 8b 45 67   # sequence number
  00 00 00 00   # acknowledgment number
  a0            # data offset 10 (40 bytes), reserved 0
  02            # flags: SYN
  fa f0         # window 64240
  e5 87         # checksum
  00 00         # urgent pointer
  02 04 05 b4   # MSS 1460
  04 02         # SACK permitted
  08 0a 00 01 e2 40 00 00 00 00   # timestamps: value 123456, echo 0
  01            # NOP
  03 03 07      # window scale 7
`);
const SYN: TcpHeader = {
  srcPort: 49152,
  dstPort: 80,
  seq: 0x6b8b4567,
  ack: 0,
  flags: TCP_SYN,
  window: 64240,
  urgentPointer: 0,
  options: { mss: 1460, sackPermitted: true, timestamps: { value: 123456, echo: 0 }, windowScale: 7 },
};

/** A segment with raw option bytes (a multiple of 4) and a correct checksum, to reach the option checks. */
function withOptions(options: Uint8Array, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new Uint8Array(TCP_HEADER_LEN + options.length + payload.length);
  b.set(hex('c0 00 00 50  00 00 00 01  00 00 00 00'));
  b[12] = ((TCP_HEADER_LEN + options.length) / 4) << 4;
  b[13] = TCP_ACK;
  b.set(options, TCP_HEADER_LEN);
  b.set(payload, TCP_HEADER_LEN + options.length);
  const sum = finishChecksum(sumWords(b, pseudoHeaderSum(SRC, DST, 6, b.length)));
  b[16] = sum >> 8;
  b[17] = sum & 0xff;
  return b;
}

describe('TCP golden', () => {
  it('parses a Linux SYN with every option', () => {
    const r = parseTcp(atOffset(GOLDEN_SYN), SRC, DST);
    expect(r).toEqual({ ok: true, value: { ...SYN, headerLength: 40, payload: new Uint8Array(0) } });
  });

  it('emits the same bytes, layout and checksum included', () => {
    const out = new Uint8Array(40);
    emitTcpHeader(SYN, SRC, DST, 0, out);
    expect(out).toEqual(GOLDEN_SYN);
  });

  it('emits an ACK with timestamps and SACK blocks, NOP-aligned', () => {
    const h: TcpHeader = {
      srcPort: 80,
      dstPort: 49152,
      seq: 1,
      ack: 0x10000,
      flags: TCP_ACK | TCP_PSH,
      window: 502,
      urgentPointer: 0,
      options: { timestamps: { value: 2, echo: 1 }, sackBlocks: [{ left: 0x20000, right: 0x20100 }] },
    };
    const payload = hex('68 69');
    const out = new Uint8Array(tcpHeaderLength(h.options) + payload.length);
    out.set(payload, out.length - payload.length);
    emitTcpHeader(h, SRC, DST, payload.length, out);
    expect(out.subarray(12, 14)).toEqual(hex('b0 18')); // 44-byte header; ACK | PSH
    expect(out.subarray(20, 44)).toEqual(
      hex(`
        01 01 08 0a  00 00 00 02  00 00 00 01   # NOP NOP timestamps 2, 1
        01 01 05 0a  00 02 00 00  00 02 01 00   # NOP NOP SACK [0x20000, 0x20100)
      `),
    );
    expect(parseTcp(out, SRC, DST)).toEqual({ ok: true, value: { ...h, headerLength: 44, payload } });
  });

  it('names the flag bits', () => {
    expect([TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR]).toEqual([1, 2, 4, 8, 16, 32, 64, 128]);
    const r = parseTcp(withOptions(new Uint8Array(0)), SRC, DST);
    expect(r.ok && r.value.flags & TCP_ACK).toBeTruthy();
    expect(r.ok && r.value.flags & TCP_SYN).toBe(0);
  });

  it('skips unknown options by their length and stops at EOL', () => {
    const r = parseTcp(withOptions(hex('1e 04 ab cd  02 04 05 b4  00 03 03 ff')), SRC, DST); // MPTCP-like kind 30; EOL; junk
    expect(r.ok && r.value.options).toEqual({ mss: 1460 });
  });

  it('keeps the last of repeated options', () => {
    const r = parseTcp(withOptions(hex('02 04 05 b4  02 04 02 18')), SRC, DST);
    expect(r.ok && r.value.options).toEqual({ mss: 536 });
  });

  it('reads up to four SACK blocks', () => {
    const opt = new Uint8Array(36);
    opt.set(hex('01 01 05 22')); // NOP NOP SACK, length 2 + 4 * 8
    for (let i = 0; i < 4; i++) opt.set(hex(`00 00 00 0${i}  00 00 01 0${i}`), 4 + i * 8);
    const r = parseTcp(withOptions(opt), SRC, DST);
    expect(r.ok && r.value.options.sackBlocks).toEqual([0, 1, 2, 3].map((i) => ({ left: i, right: 0x100 + i })));
  });

  it('lays out header lengths and refuses more than 40 bytes of options', () => {
    expect(tcpHeaderLength({})).toBe(20);
    expect(tcpHeaderLength({ sackPermitted: true })).toBe(24);
    expect(tcpHeaderLength({ sackPermitted: false })).toBe(20);
    expect(tcpHeaderLength({ timestamps: { value: 0, echo: 0 }, sackPermitted: true })).toBe(32);
    const block = { left: 0, right: 1 };
    expect(tcpHeaderLength({ timestamps: { value: 0, echo: 0 }, sackBlocks: [block, block, block] })).toBe(60);
    expect(() => tcpHeaderLength({ timestamps: { value: 0, echo: 0 }, sackBlocks: [block, block, block, block] })).toThrow(RangeError);
  });
});

describe('TCP round trip', () => {
  const u16 = fc.integer({ min: 0, max: 0xffff });
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const options: fc.Arbitrary<TcpOptions> = fc
    .record(
      {
        mss: u16,
        windowScale: fc.integer({ min: 0, max: 255 }),
        sackPermitted: fc.constant(true),
        sackBlocks: fc.array(fc.record({ left: u32, right: u32 }), { minLength: 1, maxLength: 4 }),
        timestamps: fc.record({ value: u32, echo: u32 }),
      },
      { requiredKeys: [] },
    )
    .filter((o) => {
      try {
        return tcpHeaderLength(o) <= 60;
      } catch {
        return false;
      }
    });
  const header = fc.record({
    srcPort: u16,
    dstPort: u16,
    seq: u32,
    ack: u32,
    flags: fc.integer({ min: 0, max: 255 }),
    window: u16,
    urgentPointer: u16,
    options,
  });

  it('parse(emit(x)) == x, options included', () => {
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 64 }), u32, u32, (h, payload, src, dst) => {
        const headerLength = tcpHeaderLength(h.options);
        const out = new Uint8Array(headerLength + payload.length);
        out.set(payload, headerLength);
        emitTcpHeader(h, src, dst, payload.length, out);
        expect(parseTcp(out, src, dst)).toEqual({ ok: true, value: { ...h, headerLength, payload } });
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});

describe('TCP gathered (header and payload in two arrays)', () => {
  const h: TcpHeader = { srcPort: 80, dstPort: 4000, seq: 7, ack: 9, flags: TCP_ACK | TCP_PSH, window: 512, urgentPointer: 0, options: { timestamps: { value: 1, echo: 2 } } };
  const payload = Uint8Array.from({ length: 1001 }, (_, i) => i * 13);
  const headerLength = tcpHeaderLength(h.options);
  const whole = new Uint8Array(headerLength + payload.length);
  whole.set(payload, headerLength);
  emitTcpHeader(h, SRC, DST, payload.length, whole);

  it('parses a header whose payload is another array, the checksum summed over both', () => {
    const parsed = parseTcp(whole.slice(0, headerLength), SRC, DST, true, payload.slice());
    expect(parsed).toEqual({ ok: true, value: { ...h, options: expect.objectContaining(h.options), headerLength, payload } });
  });

  it('drops one whose tail was changed (checksum), or whose first array holds more than the header', () => {
    const bent = payload.slice();
    bent[1000]! ^= 1;
    expect(parseTcp(whole.slice(0, headerLength), SRC, DST, true, bent)).toEqual({ ok: false, reason: 'tcp.checksum' });
    expect(parseTcp(whole.slice(0, headerLength + 4), SRC, DST, false, payload.subarray(4))).toEqual({ ok: false, reason: 'tcp.dataOffset' });
  });

  it('emits at an offset the bytes it emits at 0, and touches nothing around them', () => {
    const out = new Uint8Array(7 + whole.length + 5).fill(0xee);
    out.set(payload, 7 + headerLength);
    emitTcpHeader(h, SRC, DST, payload.length, out, 7);
    expect(out.subarray(7, 7 + whole.length)).toEqual(whole);
    expect([...out.subarray(0, 7), ...out.subarray(7 + whole.length)]).toEqual(Array(12).fill(0xee));
  });
});

describe('TCP drop reasons', () => {
  const cases: [string, Uint8Array, string][] = [
    ['19 bytes', GOLDEN_SYN.subarray(0, 19), 'tcp.truncated'],
    ['data offset 4', Object.assign(GOLDEN_SYN.slice(), { 12: 0x40 }), 'tcp.dataOffset'],
    ['data offset past the segment', Object.assign(GOLDEN_SYN.slice(), { 12: 0xb0 }), 'tcp.dataOffset'],
    ['a flipped bit', Object.assign(GOLDEN_SYN.slice(), { 14: 0xfb }), 'tcp.checksum'],
    ['a dropped option byte', Object.assign(GOLDEN_SYN.slice(0, 39), { 12: 0x90 }), 'tcp.checksum'],
    ['option length 0', withOptions(hex('1e 00 00 00')), 'tcp.optionLength'],
    ['option length 1', withOptions(hex('02 01 05 b4')), 'tcp.optionLength'],
    ['a kind without its length byte', withOptions(hex('01 01 01 02')), 'tcp.optionLength'],
    ['an option past the header', withOptions(hex('02 04 05 b4  01 08 0a 00'), hex('00 00 00 00 00 00')), 'tcp.optionLength'],
    ['an unknown option past the header', withOptions(hex('1e 05 00 00')), 'tcp.optionLength'],
    ['MSS of length 3', withOptions(hex('02 03 05 01')), 'tcp.optionLength'],
    ['window scale of length 4', withOptions(hex('03 04 07 00')), 'tcp.optionLength'],
    ['SACK-permitted of length 3', withOptions(hex('04 03 00 01')), 'tcp.optionLength'],
    ['SACK of length 6', withOptions(hex('05 06 00 00 00 01 00 00')), 'tcp.optionLength'],
    ['SACK of length 14', withOptions(hex('05 0e 00 00 00 01 00 00 00 02 00 00 00 00 00 00')), 'tcp.optionLength'],
    ['timestamps of length 8', withOptions(hex('08 08 00 00 00 01 00 00')), 'tcp.optionLength'],
  ];
  it.each(cases)('%s', (_name, bytes, reason) => {
    expect(parseTcp(bytes, SRC, DST)).toEqual({ ok: false, reason });
  });

  it('checksums over the pseudo-header', () => {
    expect(parseTcp(GOLDEN_SYN, SRC, DST + 1)).toEqual({ ok: false, reason: 'tcp.checksum' });
  });
});
