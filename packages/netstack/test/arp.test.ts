import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { ARP_LEN, ARP_REPLY, ARP_REQUEST, emitArp, parseArp, type ArpPacket } from '../src/wire/arp.js';
import { emitEthernetHeader, ETHERTYPE_ARP, MAC_BROADCAST, parseEthernet } from '../src/wire/ethernet.js';
import { atOffset, hex } from './hex.js';

// "Who has 10.0.0.2? Tell 10.0.0.1", broadcast by 52:54:00:12:34:56.
const GOLDEN_REQUEST = hex(`
  00 01               # hardware type 1 (Ethernet)
  08 00               # protocol type 0x0800 (IPv4)
  06                  # hardware address length
  04                  # protocol address length
  00 01               # opcode 1 (request)
  52 54 00 12 34 56   # sender MAC
  0a 00 00 01         # sender IP 10.0.0.1
  00 00 00 00 00 00   # target MAC (unknown)
  0a 00 00 02         # target IP 10.0.0.2
`);
const REQUEST: ArpPacket = {
  opcode: ARP_REQUEST,
  senderMac: 0x525400123456,
  senderIp: 0x0a000001,
  targetMac: 0,
  targetIp: 0x0a000002,
};

describe('ARP golden', () => {
  it('parses a request', () => {
    expect(parseArp(atOffset(GOLDEN_REQUEST))).toEqual({ ok: true, value: REQUEST });
  });

  it('emits the same bytes', () => {
    const out = new Uint8Array(ARP_LEN);
    emitArp(REQUEST, out);
    expect(out).toEqual(GOLDEN_REQUEST);
  });

  it('emits a whole 60-byte frame: header, ARP, 18 bytes of zero padding', () => {
    const frame = new Uint8Array(60).fill(0xee);
    emitArp(REQUEST, frame, 14);
    expect(emitEthernetHeader({ dst: MAC_BROADCAST, src: REQUEST.senderMac, ethertype: ETHERTYPE_ARP }, ARP_LEN, frame)).toBe(60);
    const expected = new Uint8Array(60); // zero padding after byte 42
    expected.set(hex('ff ff ff ff ff ff  52 54 00 12 34 56  08 06'));
    expected.set(GOLDEN_REQUEST, 14);
    expect(frame).toEqual(expected);
    const eth = parseEthernet(frame);
    // The padding after the 28 bytes is ignored.
    expect(eth.ok && parseArp(eth.value.payload)).toEqual({ ok: true, value: REQUEST });
  });

  it('parses a reply', () => {
    const reply = GOLDEN_REQUEST.slice();
    reply[7] = ARP_REPLY;
    expect(parseArp(reply)).toEqual({ ok: true, value: { ...REQUEST, opcode: ARP_REPLY } });
  });
});

describe('ARP round trip', () => {
  it('parse(emit(x)) == x', () => {
    const mac = fc.integer({ min: 0, max: 2 ** 48 - 1 });
    const ip = fc.integer({ min: 0, max: 0xffffffff });
    const opcode = fc.constantFrom(ARP_REQUEST, ARP_REPLY);
    const packet = fc.record({ opcode, senderMac: mac, senderIp: ip, targetMac: mac, targetIp: ip });
    fc.assert(
      fc.property(packet, (p) => {
        const out = new Uint8Array(ARP_LEN);
        emitArp(p, out);
        expect(parseArp(out)).toEqual({ ok: true, value: p });
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});

describe('ARP drop reasons', () => {
  const patched = (at: number, value: number) => Object.assign(GOLDEN_REQUEST.slice(), { [at]: value });
  const cases: [string, Uint8Array, string][] = [
    ['27 bytes', GOLDEN_REQUEST.subarray(0, 27), 'arp.truncated'],
    ['hardware type 6 (IEEE 802)', patched(1, 6), 'arp.hardwareType'],
    ['protocol type 0x86dd (IPv6)', Object.assign(GOLDEN_REQUEST.slice(), { 2: 0x86, 3: 0xdd }), 'arp.protocolType'],
    ['hardware length 8', patched(4, 8), 'arp.addressLength'],
    ['protocol length 16', patched(5, 16), 'arp.addressLength'],
    ['opcode 0', patched(7, 0), 'arp.opcode'],
    ['opcode 3 (RARP request)', patched(7, 3), 'arp.opcode'],
    ['opcode 0x0101', patched(6, 1), 'arp.opcode'],
  ];
  it.each(cases)('%s', (_name, bytes, reason) => {
    expect(parseArp(bytes)).toEqual({ ok: false, reason });
  });
});
