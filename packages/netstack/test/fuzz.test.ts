/**
 * Every parser, fed random bytes and mutated valid frames, returns a value or
 * one of its declared drop reasons and never throws. Fixed seeds make every
 * run the same; a failure prints its seed and shrunk counterexample.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { emitArp, parseArp, ARP_LEN, ARP_REPLY, ARP_REQUEST, type ArpDropReason } from '../src/wire/arp.js';
import { finishChecksum, internetChecksum, pseudoHeaderSum, sumWords } from '../src/wire/checksum.js';
import { emitEthernetFrame, ETHERTYPE_ARP, ETHERTYPE_IPV4, parseEthernet, type EthernetDropReason } from '../src/wire/ethernet.js';
import {
  emitIcmp,
  icmpLength,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REQUEST,
  ICMP_TIME_EXCEEDED,
  parseIcmp,
  type IcmpDropReason,
  type IcmpMessage,
} from '../src/wire/icmp.js';
import { emitIpv4Header, IPPROTO_TCP, IPPROTO_UDP, IPV4_HEADER_LEN, parseIpv4, type Ipv4DropReason } from '../src/wire/ipv4.js';
import { emitTcpHeader, parseTcp, tcpHeaderLength, TCP_ACK, TCP_SYN, type TcpDropReason, type TcpHeader } from '../src/wire/tcp.js';
import { emitUdpHeader, parseUdp, UDP_HEADER_LEN, type UdpDropReason } from '../src/wire/udp.js';

const SRC = 0x0a000001;
const DST = 0x0a000002;

/** Records over each reason type, so a reason added to a parser without being listed here fails to compile. */
const reasons = <R extends string>(all: Record<R, true>): ReadonlySet<string> => new Set(Object.keys(all));

interface Target {
  name: string;
  parse: (b: Uint8Array) => { ok: true } | { ok: false; reason: string };
  reasons: ReadonlySet<string>;
  /** Valid frames to mutate. */
  seeds: Uint8Array[];
  /** Offsets of bytes that steer parsing (lengths, types, option kinds), for targeted overwrites. */
  fields: number[];
  /** Recomputes the checksum after a mutation, so the checks behind it are reached too. */
  fixChecksum?: (b: Uint8Array) => void;
}

function putU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >> 8;
  b[at + 1] = v & 0xff;
}

function ipv4Packet(protocol: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(IPV4_HEADER_LEN + payload.length);
  out.set(payload, IPV4_HEADER_LEN);
  const h = { dscpEcn: 0, identification: 1, dontFragment: true, moreFragments: false, fragmentOffset: 0, ttl: 64 };
  emitIpv4Header({ ...h, protocol, src: SRC, dst: DST }, payload.length, out);
  return out;
}

function udpDatagram(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(UDP_HEADER_LEN + payload.length);
  out.set(payload, UDP_HEADER_LEN);
  emitUdpHeader(5353, 53, SRC, DST, payload.length, out);
  return out;
}

function tcpSegment(h: TcpHeader, payload: Uint8Array): Uint8Array {
  const length = tcpHeaderLength(h.options);
  const out = new Uint8Array(length + payload.length);
  out.set(payload, length);
  emitTcpHeader(h, SRC, DST, payload.length, out);
  return out;
}

function icmpMessage(m: IcmpMessage): Uint8Array {
  const out = new Uint8Array(icmpLength(m));
  emitIcmp(m, out);
  return out;
}

function arpPacket(opcode: typeof ARP_REQUEST | typeof ARP_REPLY): Uint8Array {
  const out = new Uint8Array(ARP_LEN);
  emitArp({ opcode, senderMac: 0x525400123456, senderIp: SRC, targetMac: 0, targetIp: DST }, out);
  return out;
}

const text = new TextEncoder().encode('hello, moat');
const syn = tcpSegment(
  {
    ...{ srcPort: 49152, dstPort: 80, seq: 1, ack: 0, flags: TCP_SYN, window: 64240, urgentPointer: 0 },
    options: { mss: 1460, sackPermitted: true, timestamps: { value: 1, echo: 0 }, windowScale: 7 },
  },
  new Uint8Array(0),
);
const ack = tcpSegment(
  {
    ...{ srcPort: 80, dstPort: 49152, seq: 9, ack: 2, flags: TCP_ACK, window: 502, urgentPointer: 0 },
    options: { timestamps: { value: 5, echo: 1 }, sackBlocks: [{ left: 100, right: 200 }, { left: 300, right: 400 }] },
  },
  text,
);
const echo = icmpMessage({ type: ICMP_ECHO_REQUEST, id: 1, seq: 2, data: text });
const udp = udpDatagram(text);
const quote = ipv4Packet(IPPROTO_UDP, udp).subarray(0, 28);
const unreachable = icmpMessage({ type: ICMP_DEST_UNREACHABLE, code: 4, nextHopMtu: 1280, original: quote });
const timeExceeded = icmpMessage({ type: ICMP_TIME_EXCEEDED, code: 0, original: quote });
const arp = arpPacket(ARP_REQUEST);

const targets: Target[] = [
  {
    name: 'ethernet',
    parse: parseEthernet,
    reasons: reasons<EthernetDropReason>({ 'ethernet.truncated': true }),
    seeds: [
      emitEthernetFrame({ dst: 0xffffffffffff, src: 0x525400123456, ethertype: ETHERTYPE_ARP }, arp),
      emitEthernetFrame({ dst: 1, src: 2, ethertype: ETHERTYPE_IPV4 }, ipv4Packet(IPPROTO_TCP, syn)),
    ],
    fields: [12, 13],
  },
  {
    name: 'arp',
    parse: parseArp,
    reasons: reasons<ArpDropReason>({
      'arp.truncated': true,
      'arp.hardwareType': true,
      'arp.protocolType': true,
      'arp.addressLength': true,
      'arp.opcode': true,
    }),
    seeds: [arp, arpPacket(ARP_REPLY)],
    fields: [0, 1, 2, 3, 4, 5, 6, 7],
  },
  {
    name: 'ipv4',
    parse: parseIpv4,
    reasons: reasons<Ipv4DropReason>({
      'ipv4.truncated': true,
      'ipv4.version': true,
      'ipv4.headerLength': true,
      'ipv4.totalLength': true,
      'ipv4.checksum': true,
    }),
    seeds: [ipv4Packet(IPPROTO_UDP, udp), ipv4Packet(IPPROTO_TCP, ack)],
    fields: [0, 2, 3],
    fixChecksum: (b) => {
      const headerLength = (b[0]! & 0x0f) * 4;
      if (headerLength < IPV4_HEADER_LEN || headerLength > b.length) return;
      putU16(b, 10, 0);
      putU16(b, 10, internetChecksum(b.subarray(0, headerLength)));
    },
  },
  {
    name: 'udp',
    parse: (b) => parseUdp(b, SRC, DST),
    reasons: reasons<UdpDropReason>({ 'udp.truncated': true, 'udp.length': true, 'udp.checksum': true }),
    seeds: [udp, udpDatagram(new Uint8Array(0))],
    fields: [4, 5, 6, 7],
    fixChecksum: (b) => {
      const length = b.length >= UDP_HEADER_LEN ? (b[4]! << 8) | b[5]! : 0;
      if (length < UDP_HEADER_LEN || length > b.length) return;
      putU16(b, 6, 0);
      putU16(b, 6, finishChecksum(sumWords(b.subarray(0, length), pseudoHeaderSum(SRC, DST, IPPROTO_UDP, length))));
    },
  },
  {
    name: 'icmp',
    parse: parseIcmp,
    reasons: reasons<IcmpDropReason>({ 'icmp.truncated': true, 'icmp.checksum': true, 'icmp.unknownType': true }),
    seeds: [echo, unreachable, timeExceeded],
    fields: [0, 1],
    fixChecksum: (b) => {
      if (b.length < 8) return;
      putU16(b, 2, 0);
      putU16(b, 2, internetChecksum(b));
    },
  },
  {
    name: 'tcp',
    parse: (b) => parseTcp(b, SRC, DST),
    reasons: reasons<TcpDropReason>({
      'tcp.truncated': true,
      'tcp.dataOffset': true,
      'tcp.checksum': true,
      'tcp.optionLength': true,
    }),
    seeds: [syn, ack],
    fields: [12, ...Array.from({ length: 24 }, (_, i) => 20 + i)], // data offset, then every option byte
    fixChecksum: (b) => {
      if (b.length < 20) return;
      putU16(b, 16, 0);
      putU16(b, 16, finishChecksum(sumWords(b, pseudoHeaderSum(SRC, DST, IPPROTO_TCP, b.length))));
    },
  },
];

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'field'; which: number; value: number }
  | { kind: 'append'; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('field' as const),
    which: fc.nat(),
    value: fc.oneof(fc.constantFrom(0, 1, 2, 0xff), fc.integer({ min: 0, max: 255 })),
  }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);

function mutate(seed: Uint8Array, mutations: Mutation[], fields: number[]): Uint8Array {
  let b = seed.slice();
  for (const m of mutations) {
    if (m.kind === 'append') {
      const longer = new Uint8Array(b.length + m.bytes.length);
      longer.set(b);
      longer.set(m.bytes, b.length);
      b = longer;
    } else if (b.length === 0) {
      continue;
    } else if (m.kind === 'flip') b[m.at % b.length]! ^= 1 << m.bit;
    else if (m.kind === 'truncate') b = b.slice(0, m.at % b.length);
    else {
      const at = fields[m.which % fields.length]!;
      if (at < b.length) b[at] = m.value;
    }
  }
  return b;
}

function expectWellFormed(t: Target, b: Uint8Array): void {
  const r = t.parse(b); // a throw fails the property
  if (!r.ok) expect(t.reasons).toContain(r.reason);
}

describe.each(targets)('$name parser never throws', (t) => {
  it('seeds are valid', () => {
    for (const s of t.seeds) expect(t.parse(s).ok).toBe(true);
  });

  it('on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), (b) => expectWellFormed(t, b)),
      { seed: 42, numRuns: 500 },
    );
  });

  it('on mutated valid frames', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...t.seeds),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.nat(7),
        (seed, mutations, fix, offset) => {
          const b = mutate(seed, mutations, t.fields);
          if (fix) t.fixChecksum?.(b);
          // Parse from a view into a larger buffer too: offsets must not leak into reads.
          const backing = new Uint8Array(offset + b.length + 8).fill(0xa5);
          backing.set(b, offset);
          expectWellFormed(t, b);
          expectWellFormed(t, backing.subarray(offset, offset + b.length));
          expect(t.parse(backing.subarray(offset, offset + b.length))).toEqual(t.parse(b));
        },
      ),
      { seed: 42, numRuns: 500 },
    );
  });
});
