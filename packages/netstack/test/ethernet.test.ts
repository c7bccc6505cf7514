import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  emitEthernetFrame,
  emitEthernetHeader,
  ETHERNET_HEADER_LEN,
  ETHERNET_MIN_FRAME_LEN,
  ethernetFrameLength,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  formatMacAddress,
  MAC_BROADCAST,
  parseEthernet,
  parseMacAddress,
  readMac,
  writeMac,
} from '../src/wire/ethernet.js';
import { atOffset, hex } from './hex.js';

const HOST = 0x525400123456; // 52:54:00:12:34:56, a QEMU-style locally administered address

const GOLDEN_HEADER = hex(`
  ff ff ff ff ff ff   # destination: broadcast
  52 54 00 12 34 56   # source
  08 06               # EtherType: ARP
`);

describe('MAC addresses', () => {
  it('parses and formats colon-separated hex', () => {
    expect(parseMacAddress('52:54:00:12:34:56')).toBe(HOST);
    expect(parseMacAddress('FF:ff:FF:ff:FF:ff')).toBe(MAC_BROADCAST);
    expect(formatMacAddress(HOST)).toBe('52:54:00:12:34:56');
    expect(formatMacAddress(0x000000000001)).toBe('00:00:00:00:00:01');
    expect(formatMacAddress(MAC_BROADCAST)).toBe('ff:ff:ff:ff:ff:ff');
  });

  it.each(['52:54:00:12:34', '52:54:00:12:34:56:78', '52-54-00-12-34-56', '5:54:00:12:34:56', 'gg:54:00:12:34:56', ''])(
    'rejects %j',
    (text) => expect(() => parseMacAddress(text)).toThrow(RangeError),
  );

  it('reads and writes all 48 bits', () => {
    const b = new Uint8Array(8);
    writeMac(b, 1, 0xfedcba987654);
    expect(b).toEqual(hex('00 fe dc ba 98 76 54 00'));
    expect(readMac(b, 1)).toBe(0xfedcba987654);
  });
});

describe('Ethernet golden', () => {
  it('parses the header and keeps padding in the payload', () => {
    const frame = new Uint8Array(60);
    frame.set(GOLDEN_HEADER);
    const r = parseEthernet(atOffset(frame));
    expect(r.ok && r.value).toMatchObject({ dst: MAC_BROADCAST, src: HOST, ethertype: ETHERTYPE_ARP });
    expect(r.ok && r.value.payload.length).toBe(46);
  });

  it('emits the header and zeroes the padding of a reused buffer', () => {
    const out = new Uint8Array(64).fill(0xee);
    out.set(hex('01 02 03'), 16);
    const length = emitEthernetHeader({ dst: MAC_BROADCAST, src: HOST, ethertype: ETHERTYPE_ARP }, 3, out, 2);
    expect(length).toBe(ETHERNET_MIN_FRAME_LEN);
    expect(out.subarray(2, 16)).toEqual(GOLDEN_HEADER);
    expect(out.subarray(16, 19)).toEqual(hex('01 02 03'));
    expect(out.subarray(19, 62).every((x) => x === 0)).toBe(true);
    expect(out.subarray(62)).toEqual(hex('ee ee')); // past the frame: untouched
  });

  it('pads only short frames', () => {
    expect(ethernetFrameLength(0)).toBe(60);
    expect(ethernetFrameLength(46)).toBe(60);
    expect(ethernetFrameLength(47)).toBe(61);
    expect(ethernetFrameLength(1500)).toBe(1514);
  });

  it('refuses a buffer too small for the padded frame', () => {
    expect(() => emitEthernetHeader({ dst: 0, src: 0, ethertype: 0 }, 10, new Uint8Array(59))).toThrow(RangeError);
  });
});

describe('Ethernet round trip', () => {
  it('parse(emit(x)) == x, with the payload followed by zero padding', () => {
    const mac = fc.integer({ min: 0, max: 2 ** 48 - 1 });
    const ethertype = fc.oneof(fc.constantFrom(ETHERTYPE_IPV4, ETHERTYPE_ARP), fc.integer({ min: 0, max: 0xffff }));
    const header = fc.record({ dst: mac, src: mac, ethertype });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 100 }), (h, payload) => {
        const frame = emitEthernetFrame(h, payload);
        expect(frame.length).toBe(Math.max(60, ETHERNET_HEADER_LEN + payload.length));
        const r = parseEthernet(frame);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect({ dst: r.value.dst, src: r.value.src, ethertype: r.value.ethertype }).toEqual(h);
        expect(r.value.payload.subarray(0, payload.length)).toEqual(payload);
        expect(r.value.payload.subarray(payload.length).every((x) => x === 0)).toBe(true);
        expect(parseMacAddress(formatMacAddress(h.src))).toBe(h.src);
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});

describe('Ethernet drop reasons', () => {
  it('truncated: fewer than 14 bytes', () => {
    expect(parseEthernet(GOLDEN_HEADER.subarray(0, 13))).toEqual({ ok: false, reason: 'ethernet.truncated' });
    expect(parseEthernet(new Uint8Array(0))).toEqual({ ok: false, reason: 'ethernet.truncated' });
    expect(parseEthernet(GOLDEN_HEADER).ok).toBe(true); // a bare header has an empty payload
  });
});
