/**
 * The whole receive path of an Ethernet interface, fed valid frames of every
 * kind (ARP, UDP, ICMP echo, fragments) and mutations of them: the stack never
 * throws, releases every frame once, and counts every frame exactly once as
 * consumed (in.*) or dropped for a reason (drop.*).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ARP_LEN,
  ARP_REQUEST,
  emitArp,
  emitEthernetFrame,
  emitIcmp,
  emitIpv4Header,
  emitUdpHeader,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  heapAllocate,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  IPV4_HEADER_LEN,
  MAC_BROADCAST,
  planFragments,
  Stack,
  type Device,
  type PacketBuffer,
} from '../src/index.js';

const US = 0x0a000001;
const PEER = 0x0a000002;
const OUR_MAC = 0x020000000001;
const PEER_MAC = 0x020000000002;

/** A device whose receive queue the test fills and whose transmissions it counts. */
class TestDevice implements Device {
  readonly medium = 'ethernet';
  readonly mtu = 1500;
  readonly inbox: PacketBuffer[] = [];
  sent = 0;
  transmit(frame: PacketBuffer): boolean {
    this.sent++;
    frame.release();
    return true;
  }
  receive(): PacketBuffer | undefined {
    return this.inbox.shift();
  }
}

function ipv4(protocol: number, payload: Uint8Array, extra: Partial<Parameters<typeof emitIpv4Header>[0]> = {}): Uint8Array {
  const out = new Uint8Array(IPV4_HEADER_LEN + payload.length);
  out.set(payload, IPV4_HEADER_LEN);
  emitIpv4Header(
    { dscpEcn: 0, identification: 7, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol, src: PEER, dst: US, ...extra },
    payload.length,
    out,
  );
  return out;
}

function udp(port: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + data.length);
  out.set(data, 8);
  emitUdpHeader(5000, port, PEER, US, data.length, out);
  return out;
}

const eth = (ethertype: number, payload: Uint8Array, dst = OUR_MAC) => emitEthernetFrame({ dst, src: PEER_MAC, ethertype }, payload);

/** Valid frames of every kind the receive path handles. */
function seeds(): Uint8Array[] {
  const arp = new Uint8Array(ARP_LEN);
  emitArp({ opcode: ARP_REQUEST, senderMac: PEER_MAC, senderIp: PEER, targetMac: 0, targetIp: US }, arp);
  const echo = new Uint8Array(8 + 16);
  emitIcmp({ type: ICMP_ECHO_REQUEST, id: 1, seq: 1, data: new Uint8Array(16).fill(3) }, echo);
  const big = udp(7, new Uint8Array(3000).fill(9));
  const fragments = planFragments(big.length, 1500).map((p) =>
    eth(ETHERTYPE_IPV4, ipv4(IPPROTO_UDP, big.subarray(p.offset, p.offset + p.length), { identification: 99, moreFragments: p.more, fragmentOffset: p.offset })),
  );
  return [
    eth(ETHERTYPE_ARP, arp, MAC_BROADCAST),
    eth(ETHERTYPE_IPV4, ipv4(IPPROTO_UDP, udp(7, new Uint8Array([1, 2, 3])))),
    eth(ETHERTYPE_IPV4, ipv4(IPPROTO_UDP, udp(9, new Uint8Array([4])))), // closed port: ICMP error back
    eth(ETHERTYPE_IPV4, ipv4(IPPROTO_ICMP, echo)),
    eth(ETHERTYPE_IPV4, ipv4(47, new Uint8Array(20))), // GRE: a protocol this stack does not speak
    ...fragments,
  ];
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.nat(255) }),
);

function mutate(frame: Uint8Array, m: fc.Arbitrary<unknown> extends never ? never : { kind: 'flip' | 'cut' | 'byte'; at: number; bit?: number; value?: number }): Uint8Array {
  const out = frame.slice();
  const at = m.at % out.length;
  if (m.kind === 'flip') out[at]! ^= 1 << m.bit!;
  else if (m.kind === 'byte') out[at] = m.value!;
  else return out.subarray(0, at);
  return out;
}

describe('the Ethernet receive path under random and mutated frames', () => {
  it('never throws, releases every frame, and counts each once', () => {
    const valid = seeds();
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.tuple(fc.nat(valid.length - 1), fc.array(mutation, { maxLength: 3 })), fc.uint8Array({ maxLength: 80 })), { maxLength: 25 }),
        (inputs) => {
          const device = new TestDevice();
          const stack = new Stack({ now: () => 0, allocate: heapAllocate });
          stack.addInterface({ name: 'eth0', device, addr: US, prefixLength: 24, mac: OUR_MAC });
          const socket = stack.udpSocket(heapAllocate);
          stack.bind(socket, { addr: 0, port: 7 });
          let released = 0;
          for (const input of inputs) {
            const bytes = input instanceof Uint8Array ? input : input[1].reduce((f, m) => mutate(f, m), valid[input[0]]!);
            device.inbox.push({ bytes, release: () => released++ });
          }
          expect(() => stack.poll(0)).not.toThrow();
          expect(() => stack.poll(60_000)).not.toThrow(); // timers: reassembly and ARP expiry
          expect(released).toBe(inputs.length);
          expect(stack.counters.get('rx.frames')).toBe(inputs.length);
          // drop.arp.unresolved counts packets we sent, not frames we received.
          expect(stack.counters.total('drop.') - stack.counters.get('drop.arp.unresolved') + stack.counters.total('in.')).toBe(inputs.length);
        },
      ),
      { seed: 424242, numRuns: 400 },
    );
  });

  it('delivers the unmutated frames: ARP answered, UDP and reassembled UDP queued, echo answered, errors sent', () => {
    const device = new TestDevice();
    const stack = new Stack({ now: () => 0, allocate: heapAllocate });
    stack.addInterface({ name: 'eth0', device, addr: US, prefixLength: 24, mac: OUR_MAC });
    const socket = stack.udpSocket(heapAllocate);
    stack.bind(socket, { addr: 0, port: 7 });
    for (const bytes of seeds()) device.inbox.push({ bytes, release() {} });
    stack.poll(0);
    expect(stack.counters.snapshot()).toMatchObject({
      'in.arp': 1,
      'in.udp': 2,
      'in.icmpEchoRequest': 1,
      'in.fragment': 2,
      'frag.reassembled': 1,
      'drop.udp.noSocket': 1,
      'drop.ipv4.protocol': 1,
      'out.arpReply': 1,
      'out.icmpEchoReply': 1,
      'out.icmpError': 2,
    });
    expect(socket.queuedDatagrams).toBe(2);
    expect(socket.dequeue()!.buffer.bytes.length).toBe(3);
    expect(socket.dequeue()!.buffer.bytes.length).toBe(3000);
  });
});
