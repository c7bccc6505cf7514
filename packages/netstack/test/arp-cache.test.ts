import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArpCache, DEFAULT_ARP_OPTIONS, type ArpOptions } from '../src/arp-cache.js';
import type { PacketBuffer } from '../src/buffer.js';
import { Counters } from '../src/counters.js';
import { MAC_BROADCAST } from '../src/wire/ethernet.js';

const IP = 0x0a000002;
const MAC = 0x020000000002;

/** Buffers that count their releases, so a test can prove each is released exactly once. */
function buffers() {
  const releases = new Map<PacketBuffer, number>();
  const make = (tag = 0): PacketBuffer => {
    const b: PacketBuffer = { bytes: Uint8Array.of(tag), release: () => void releases.set(b, releases.get(b)! + 1) };
    releases.set(b, 0);
    return b;
  };
  return { make, releases };
}

function setup(options: Partial<ArpOptions> = {}) {
  const counters = new Counters();
  return { arp: new ArpCache(options, counters), counters };
}

describe('ArpCache: bindings', () => {
  it('misses, learns, then hits', () => {
    const { arp, counters } = setup();
    expect(arp.lookup(IP, 0)).toBeUndefined();
    expect(arp.update(IP, MAC, 0)).toEqual([]);
    expect(arp.lookup(IP, 1)).toBe(MAC);
    expect(arp.lookup(IP + 1, 1)).toBeUndefined();
    expect(counters.snapshot()).toEqual({ 'arp.hit': 1, 'arp.miss': 2, 'arp.update': 1 });
  });

  it('treats a binding as a miss from entryTtlMs on, and forgets it', () => {
    const { arp, counters } = setup();
    arp.update(IP, MAC, 1000);
    expect(arp.lookup(IP, 60_999)).toBe(MAC);
    expect(arp.lookup(IP, 61_000)).toBeUndefined();
    expect(arp.entryCount).toBe(0);
    expect(counters.get('arp.expired')).toBe(1);
  });

  it('refreshes a binding, and its new MAC wins', () => {
    const { arp } = setup();
    arp.update(IP, MAC, 0);
    arp.update(IP, MAC + 1, 50_000);
    expect(arp.lookup(IP, 100_000)).toBe(MAC + 1);
    expect(arp.lookup(IP, 110_000)).toBeUndefined();
  });

  it('forgets expired bindings on poll without asking to be woken for them', () => {
    const { arp } = setup({ entryTtlMs: 100 });
    arp.update(IP, MAC, 0);
    arp.update(IP + 1, MAC, 50);
    expect(arp.poll(10).deadline).toBeUndefined();
    arp.poll(100);
    expect(arp.entryCount).toBe(1);
    arp.poll(150);
    expect(arp.entryCount).toBe(0);
  });

  it.each([
    ['the broadcast MAC', IP, MAC_BROADCAST, 'drop.arp.badMac'],
    ['a multicast MAC', IP, 0x01005e000001, 'drop.arp.badMac'],
    ['the zero MAC', IP, 0, 'drop.arp.badMac'],
    ['a MAC past 48 bits', IP, 2 ** 48, 'drop.arp.badMac'],
    ['0.0.0.0', 0, MAC, 'drop.arp.badAddress'],
    ['255.255.255.255', 0xffffffff, MAC, 'drop.arp.badAddress'],
    ['a multicast IP', 0xe0000001, MAC, 'drop.arp.badAddress'],
  ])('refuses a binding to %s, leaving waiting packets waiting', (_name, ip, mac, counter) => {
    const { arp, counters } = setup();
    const { make } = buffers();
    const waiting = make();
    if (ip === IP) arp.enqueue(IP, waiting, 0);
    expect(arp.update(ip, mac, 0)).toEqual([]);
    expect(arp.lookup(ip, 0)).toBeUndefined();
    expect(counters.get(counter)).toBe(1);
    if (ip === IP) expect(arp.pendingPackets).toBe(1);
  });

  it('stays within maxEntries under a flood, evicting the least recently learned', () => {
    const { arp, counters } = setup();
    const { maxEntries } = DEFAULT_ARP_OPTIONS;
    const keep = 0x0a0000fe;
    arp.update(keep, MAC, 0);
    for (let i = 0; i < 10_000; i++) {
      arp.update(0x0b000000 + i, MAC + i, i);
      if (i % 100 === 0) arp.update(keep, MAC, i); // a host we keep hearing from
      expect(arp.entryCount).toBeLessThanOrEqual(maxEntries);
    }
    expect(arp.entryCount).toBe(maxEntries);
    expect(arp.lookup(keep, 10_000)).toBe(MAC);
    expect(arp.lookup(0x0b000000, 10_000)).toBeUndefined();
    expect(arp.lookup(0x0b000000 + 9999, 10_000)).toBe(MAC + 9999);
    expect(counters.get('arp.evicted')).toBe(10_001 - maxEntries);
  });
});

describe('ArpCache: resolution', () => {
  it('parks packets, asks once, and hands them back in order when the answer comes', () => {
    const { arp, counters } = setup();
    const { make, releases } = buffers();
    const [a, b, c] = [make(1), make(2), make(3)];
    expect(arp.enqueue(IP, a, 0)).toEqual({ queued: true, sendRequest: true });
    expect(arp.enqueue(IP, b, 10)).toEqual({ queued: true, sendRequest: false });
    expect(arp.enqueue(IP, c, 20)).toEqual({ queued: true, sendRequest: false });
    expect(arp.pendingPackets).toBe(3);
    expect(arp.update(IP, MAC, 30)).toEqual([a, b, c]);
    expect(arp.pendingPackets).toBe(0);
    expect(arp.lookup(IP, 31)).toBe(MAC);
    expect(arp.poll(5000)).toEqual({ requests: [], failed: [], deadline: undefined });
    expect([...releases.values()]).toEqual([0, 0, 0]); // now the caller's to send, not released here
    expect(counters.get('arp.request')).toBe(1);
  });

  it('asks again every retryMs, then gives up and returns each packet once for release', () => {
    const { arp, counters } = setup();
    const { make, releases } = buffers();
    const packets = [make(1), make(2)];
    for (const p of packets) arp.enqueue(IP, p, 0);
    expect(arp.poll(999)).toEqual({ requests: [], failed: [], deadline: 1000 });
    expect(arp.poll(1000)).toEqual({ requests: [IP], failed: [], deadline: 2000 });
    expect(arp.poll(1500)).toEqual({ requests: [], failed: [], deadline: 2000 });
    expect(arp.poll(2000)).toEqual({ requests: [IP], failed: [], deadline: 3000 });
    expect(arp.poll(3000)).toEqual({ requests: [IP], failed: [], deadline: 4000 });
    const last = arp.poll(4000);
    expect(last).toEqual({ requests: [], failed: packets, deadline: undefined });
    for (const p of last.failed) p.release();
    expect([...releases.values()]).toEqual([1, 1]);
    expect(arp.pendingPackets).toBe(0);
    expect(arp.poll(10_000)).toEqual({ requests: [], failed: [], deadline: undefined });
    expect(counters.get('arp.request')).toBe(1 + DEFAULT_ARP_OPTIONS.maxRetries);
    expect(counters.get('drop.arp.unresolved')).toBe(2);
    // A later packet starts over, no sooner than retryMs after the last request.
    expect(arp.enqueue(IP, make(), 4000)).toEqual({ queued: true, sendRequest: true });
  });

  it('spaces retries from when they were sent, so a late poll never sends two within retryMs', () => {
    const { arp } = setup();
    arp.enqueue(IP, buffers().make(), 0);
    expect(arp.poll(1700)).toEqual({ requests: [IP], failed: [], deadline: 2700 });
    expect(arp.poll(2000).requests).toEqual([]);
  });

  it('with maxRetries 0 gives up one retryMs after the only request', () => {
    const { arp } = setup({ maxRetries: 0, retryMs: 500 });
    const p = buffers().make();
    arp.enqueue(IP, p, 0);
    expect(arp.poll(500)).toEqual({ requests: [], failed: [p], deadline: undefined });
  });

  it('resolves in the middle of retrying', () => {
    const { arp } = setup();
    const p = buffers().make();
    arp.enqueue(IP, p, 0);
    arp.poll(1000);
    expect(arp.update(IP, MAC, 1500)).toEqual([p]);
    expect(arp.poll(2000)).toEqual({ requests: [], failed: [], deadline: undefined });
  });

  it('gives the earliest deadline across addresses', () => {
    const { arp } = setup();
    const { make } = buffers();
    arp.enqueue(IP, make(), 300);
    arp.enqueue(IP + 1, make(), 100);
    arp.enqueue(IP + 2, make(), 200);
    expect(arp.poll(150)).toEqual({ requests: [], failed: [], deadline: 1100 });
    expect(arp.poll(1100)).toEqual({ requests: [IP + 1], failed: [], deadline: 1200 });
    arp.update(IP + 2, MAC, 1150);
    expect(arp.poll(1150).deadline).toBe(1300);
  });
});

describe('ArpCache: queue limits', () => {
  it('refuses a packet beyond maxPendingPerAddress, leaving it to the caller', () => {
    const { arp, counters } = setup();
    const { make, releases } = buffers();
    const { maxPendingPerAddress } = DEFAULT_ARP_OPTIONS;
    const queued = Array.from({ length: maxPendingPerAddress }, (_, i) => make(i));
    for (const p of queued) expect(arp.enqueue(IP, p, 0).queued).toBe(true);
    const extra = make(99);
    expect(arp.enqueue(IP, extra, 0)).toEqual({ queued: false, sendRequest: false });
    expect(counters.get('drop.arp.queueFull')).toBe(1);
    expect(arp.update(IP, MAC, 1)).toEqual(queued);
    expect([...releases.values()].every((n) => n === 0)).toBe(true);
  });

  it('refuses packets beyond maxPendingTotal, even for a new address', () => {
    const { arp, counters } = setup({ maxPendingPerAddress: 4, maxPendingTotal: 10 });
    const { make } = buffers();
    for (let i = 0; i < 10; i++) arp.enqueue(IP + (i >> 2), make(), 0); // 4 + 4 + 2
    expect(arp.pendingPackets).toBe(10);
    expect(arp.enqueue(IP + 2, make(), 0)).toEqual({ queued: false, sendRequest: false });
    expect(arp.enqueue(IP + 3, make(), 0)).toEqual({ queued: false, sendRequest: false });
    expect(counters.get('drop.arp.queueFull')).toBe(2);
    arp.update(IP, MAC, 1);
    expect(arp.enqueue(IP + 3, make(), 1)).toEqual({ queued: true, sendRequest: true });
  });

  it('refuses to resolve addresses no host has', () => {
    const { arp, counters } = setup();
    for (const ip of [0, 0xffffffff, 0xe0000001]) expect(arp.enqueue(ip, buffers().make(), 0)).toEqual({ queued: false, sendRequest: false });
    expect(counters.get('drop.arp.badAddress')).toBe(3);
    expect(arp.pendingPackets).toBe(0);
  });

  it('returns every waiting packet on clear', () => {
    const { arp } = setup();
    const { make } = buffers();
    const packets = [make(), make(), make()];
    arp.enqueue(IP, packets[0]!, 0);
    arp.enqueue(IP + 1, packets[1]!, 0);
    arp.enqueue(IP, packets[2]!, 0);
    arp.update(IP + 5, MAC, 0);
    expect(arp.clear()).toEqual([packets[0], packets[2], packets[1]]);
    expect(arp.pendingPackets).toBe(0);
    expect(arp.entryCount).toBe(0);
    expect(arp.poll(10_000).deadline).toBeUndefined();
  });

  it('rejects options that make no sense', () => {
    const counters = new Counters();
    expect(() => new ArpCache({ retryMs: 0 }, counters)).toThrow(RangeError);
    expect(() => new ArpCache({ maxRetries: -1 }, counters)).toThrow(RangeError);
    expect(() => new ArpCache({ maxEntries: Number.NaN }, counters)).toThrow(RangeError);
    expect(DEFAULT_ARP_OPTIONS).toEqual({
      entryTtlMs: 60_000,
      retryMs: 1000,
      maxRetries: 3,
      maxEntries: 256,
      maxPendingPerAddress: 8,
      maxPendingTotal: 64,
    });
  });
});

describe('ArpCache: ownership under any sequence of events', () => {
  // Packets go in by enqueue and come out by a refusal, update, poll failure or clear:
  // whatever the order, each comes out exactly once and the bounds hold throughout.
  const op = fc.oneof(
    fc.record({ kind: fc.constant('enqueue' as const), host: fc.nat(12) }),
    fc.record({ kind: fc.constant('update' as const), host: fc.nat(12) }),
    fc.record({ kind: fc.constant('lookup' as const), host: fc.nat(12) }),
    fc.record({ kind: fc.constant('poll' as const) }),
  );

  it('releases every packet exactly once', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(op, fc.integer({ min: 0, max: 700 })), { maxLength: 300 }), (ops) => {
        const { arp } = setup({ maxEntries: 4, maxPendingPerAddress: 3, maxPendingTotal: 10, entryTtlMs: 5000 });
        const { make, releases } = buffers();
        let now = 0;
        for (const [o, dt] of ops) {
          now += dt;
          const ip = IP + (o.kind === 'poll' ? 0 : o.host);
          if (o.kind === 'enqueue') {
            const b = make();
            if (!arp.enqueue(ip, b, now).queued) b.release();
          } else if (o.kind === 'update') {
            for (const b of arp.update(ip, MAC + ip, now)) b.release(); // "sent"
          } else if (o.kind === 'lookup') {
            arp.lookup(ip, now);
          } else {
            const { failed, deadline } = arp.poll(now);
            for (const b of failed) b.release();
            if (deadline !== undefined) expect(deadline).toBeGreaterThan(now);
          }
          expect(arp.pendingPackets).toBeLessThanOrEqual(10);
          expect(arp.entryCount).toBeLessThanOrEqual(4);
        }
        for (const b of arp.clear()) b.release();
        expect([...releases.values()].filter((n) => n !== 1)).toEqual([]);
      }),
      { seed: 7, numRuns: 200 },
    );
  });
});
