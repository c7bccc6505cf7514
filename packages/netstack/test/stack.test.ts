import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EPHEMERAL_FIRST,
  heapAllocate,
  LoopbackDevice,
  parseIpv4Address,
  Stack,
  type PacketBuffer,
} from '../src/index.js';
import { partialChecksum, pseudoHeaderSum } from '../src/wire/checksum.js';
import { pattern } from './tcp-harness.js';

const LO = parseIpv4Address('127.0.0.1');

function loopbackStack(checksumOffload = true) {
  const stack = new Stack();
  const device = new LoopbackDevice(65535, 4096, checksumOffload);
  stack.addInterface({ name: 'lo', device, addr: LO, prefixLength: 8 });
  return { stack, device };
}

/** A buffer that records its release, to prove the stack releases each frame once. */
function tracked(bytes: Uint8Array, released: { n: number }): PacketBuffer {
  return { bytes, release: () => released.n++ };
}

describe('UDP over loopback', () => {
  it('carries a datagram as a real IPv4/UDP packet into the bound socket’s FIFO', () => {
    const { stack, device } = loopbackStack();
    const rx = stack.udpSocket(heapAllocate);
    const tx = stack.udpSocket(heapAllocate);
    expect(stack.bind(rx, { addr: LO, port: 5000 })).toBeNull();
    let frame: Uint8Array | undefined;
    const send = stack.send(tx, new Uint8Array([1, 2, 3]), { addr: LO, port: 5000 }, (n) => {
      const b = heapAllocate(n)!;
      frame = b.bytes;
      return b;
    });
    expect(send).toEqual({ ok: true });
    expect(device.queued).toBe(1);
    // 20 bytes of IPv4 (DF clear: this stack fragments unless asked not to; TTL 64, protocol 17) + 8 of UDP + 3 of payload.
    expect(frame!.length).toBe(31);
    expect(frame![0]).toBe(0x45);
    expect(frame![6]! & 0x40).toBe(0);
    expect(frame![8]).toBe(64);
    expect(frame![9]).toBe(17);
    stack.poll(0);
    const d = rx.dequeue()!;
    expect([...d.buffer.bytes]).toEqual([1, 2, 3]);
    expect(d.from).toEqual({ addr: LO, port: EPHEMERAL_FIRST });
    expect(stack.counters.get('in.udp')).toBe(1);
  });

  it('refuses what it cannot send whole', () => {
    const { stack } = loopbackStack();
    const s = stack.udpSocket(heapAllocate);
    expect(stack.send(s, new Uint8Array(65508), { addr: LO, port: 9 }, heapAllocate)).toEqual({ ok: false, errno: 'EMSGSIZE' });
    s.dontFragment = true;
    expect(stack.send(s, new Uint8Array(65508), { addr: LO, port: 9 }, heapAllocate)).toEqual({ ok: false, errno: 'EMSGSIZE' });
    s.dontFragment = false;
    expect(stack.send(s, new Uint8Array(1), { addr: parseIpv4Address('10.0.0.1'), port: 9 }, heapAllocate)).toEqual({
      ok: false,
      errno: 'ENETUNREACH',
    });
    expect(stack.send(s, new Uint8Array(1), { addr: LO, port: 9 }, () => null)).toEqual({ ok: false, errno: 'ENOBUFS' });
  });

  it('hands out distinct ephemeral ports and refuses taken ones', () => {
    const { stack } = loopbackStack();
    const a = stack.udpSocket(heapAllocate);
    const b = stack.udpSocket(heapAllocate);
    stack.bind(a, { addr: 0, port: 0 });
    stack.bind(b, { addr: 0, port: 0 });
    expect(a.local!.port).not.toBe(b.local!.port);
    const c = stack.udpSocket(heapAllocate);
    expect(stack.bind(c, { addr: LO, port: a.local!.port })).toBe('EADDRINUSE');
    stack.close(a);
    expect(stack.bind(c, { addr: LO, port: a.local!.port })).toBeNull();
  });
});

describe('receive path under hostile input', () => {
  it('drops a corrupted datagram by reason, and releases every frame', () => {
    const { stack, device } = loopbackStack(false); // loopback verifies no UDP checksum unless told to
    const rx = stack.udpSocket(heapAllocate);
    stack.bind(rx, { addr: LO, port: 5000 });
    const frames: Uint8Array[] = [];
    const capture = (n: number) => {
      const b = heapAllocate(n)!;
      frames.push(b.bytes);
      return b;
    };
    const tx = stack.udpSocket(heapAllocate);
    stack.send(tx, new Uint8Array([9, 9]), { addr: LO, port: 5000 }, capture);
    device.receive(); // take the good frame back out and feed mangled copies instead
    const released = { n: 0 };
    const good = frames[0]!;
    const payloadFlip = good.slice();
    payloadFlip[29]! ^= 0xff;
    const headerFlip = good.slice();
    headerFlip[8]! ^= 0x01;
    for (const bytes of [payloadFlip, headerFlip, good.slice(0, 10), good.slice()]) device.transmit(tracked(bytes, released));
    stack.poll(0);
    expect(stack.counters.get('drop.udp.checksum')).toBe(1);
    expect(stack.counters.get('drop.ipv4.checksum')).toBe(1);
    expect(stack.counters.get('drop.ipv4.truncated')).toBe(1);
    expect(rx.queuedDatagrams).toBe(1);
    expect(released.n).toBe(4);
  });

  it('never throws on random or mutated frames, and every frame is either delivered or dropped for a reason', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 120 }), { maxLength: 20 }), (inputs) => {
        const { stack, device } = loopbackStack();
        const rx = stack.udpSocket(heapAllocate);
        stack.bind(rx, { addr: 0, port: 5000 });
        const released = { n: 0 };
        for (const bytes of inputs) device.transmit(tracked(bytes, released));
        expect(() => stack.poll(0)).not.toThrow();
        expect(released.n).toBe(inputs.length);
        expect(stack.counters.get('rx.frames')).toBe(inputs.length);
        expect(stack.counters.total('drop.') + stack.counters.total('in.')).toBe(inputs.length);
      }),
      { seed: 20261125, numRuns: 300 },
    );
  });
});

describe('loopback checksum offload', () => {
  it("neither computes nor verifies TCP and UDP checksums on loopback, leaving the pseudo-header's partial sum as Linux's lo does", () => {
    const { stack, device } = loopbackStack();
    const rx = stack.udpSocket(heapAllocate);
    stack.bind(rx, { addr: LO, port: 5000 });
    const frames: Uint8Array[] = [];
    const tx = stack.udpSocket(heapAllocate);
    stack.send(tx, new Uint8Array([9, 9]), { addr: LO, port: 5000 }, (n) => {
      const b = heapAllocate(n)!;
      frames.push(b.bytes);
      return b;
    });
    const sent = frames[0]!;
    const field = (sent[26]! << 8) | sent[27]!;
    expect(field).toBe(partialChecksum(pseudoHeaderSum(LO, LO, 17, 10)));
    stack.poll(0);
    expect(rx.queuedDatagrams).toBe(1);
    expect(device.queued).toBe(0);
  });
});

describe('loopback gather', () => {
  /**
   * A stream of `n` patterned bytes between two sockets of `stack`, written `writeSize` at a time while the
   * clock goes on (delayed ACKs and Nagle need it to): what arrived, and what each frame allocation asked for.
   */
  function stream(stack: Stack, n: number, writeSize: number, sndBuf?: number) {
    const asked: number[] = [];
    const recording = (len: number) => (asked.push(len), heapAllocate(len));
    const server = stack.tcp.socket(recording);
    stack.tcp.bind(server, { addr: LO, port: 80 });
    stack.tcp.listen(server, 1);
    const client = stack.tcp.socket(recording);
    if (sndBuf !== undefined) client.config.sndBuf = sndBuf;
    stack.tcp.connect(client, { addr: LO, port: 80 });
    let now = 0;
    let accepted: ReturnType<typeof stack.tcp.accept>;
    for (let i = 0; i < 20 && !(accepted ??= stack.tcp.accept(server, recording)); i++) stack.poll(now++);
    const data = pattern(n, 5);
    const got = new Uint8Array(n);
    let written = 0;
    let read = 0;
    for (let i = 0; i < 10_000 && read < n; i++) {
      written += client.conn!.write(data.subarray(written, written + writeSize));
      stack.poll(now++);
      read += accepted!.conn!.readInto(got.subarray(read));
    }
    return { data, got, asked, read };
  }
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
  /** IPv4 and TCP headers with timestamps: all a gathered data segment's packet buffer holds. */
  const HEADERS = 20 + 32;

  it('hands a data segment over as a view of the send buffer: the packet buffer holds its headers only', () => {
    const { stack } = loopbackStack();
    const { data, got, asked } = stream(stack, 1 << 20, 50_000);
    expect(same(got, data)).toBe(true);
    // Copied in: the SYNs (60 bytes with their options) and the few segments whose view wrapped the send buffer.
    const copied = asked.filter((n) => n > HEADERS).length;
    expect(asked.filter((n) => n === HEADERS).length).toBeGreaterThan(4 * copied);
    expect(stack.counters.get('drop.ipv4.gathered')).toBe(0);
  });

  it('copies a segment whose view wraps the send buffer (put together in scratch memory that the next such view reuses)', () => {
    const { stack } = loopbackStack();
    // A 100,000-byte ring written 30,000 bytes at a time: segments straddle its end on most laps.
    const { data, got, asked } = stream(stack, 1 << 20, 30_000, 100_000);
    expect(same(got, data)).toBe(true);
    expect(asked.filter((n) => n > 60).length).toBeGreaterThanOrEqual(5);
    expect(asked.filter((n) => n === HEADERS).length).toBeGreaterThan(20);
  });

  it('gathers nothing where checksums are computed: the payload is copied in and summed', () => {
    const { stack } = loopbackStack(false);
    const { data, got, asked, read } = stream(stack, 256 << 10, 50_000);
    expect(read).toBe(data.length);
    expect(got.findIndex((x, i) => x !== data[i])).toBe(-1);
    expect(same(got, data)).toBe(true);
    // Pure ACKs are 52 bytes too; every segment of data was copied in whole.
    expect(Math.max(...asked)).toBeGreaterThan(50_000);
  });

  it('drops a gathered packet that is not a TCP segment, and one whose lengths disagree', () => {
    const { stack, device } = loopbackStack();
    const udp = stack.udpSocket(heapAllocate);
    stack.bind(udp, { addr: LO, port: 5000 });
    const frames: PacketBuffer[] = [];
    // A real UDP packet to the bound port, taken off the device, then given to it again with its last 4 bytes as a tail.
    stack.send(stack.udpSocket(heapAllocate), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), { addr: LO, port: 5000 }, (n) => {
      const b = heapAllocate(n)!;
      frames.push(b);
      return b;
    });
    device.receive();
    const whole = frames[0]!.bytes;
    device.transmit({ bytes: whole.subarray(0, whole.length - 4), tail: whole.subarray(whole.length - 4), release() {} });
    // Its total length says 4 bytes fewer than head and tail hold.
    device.transmit({ bytes: whole, tail: new Uint8Array(4), release() {} });
    stack.poll(0);
    expect(stack.counters.get('drop.ipv4.gathered')).toBe(1);
    expect(stack.counters.get('drop.ipv4.totalLength')).toBe(1);
    expect(udp.queuedDatagrams).toBe(0);
  });
});
