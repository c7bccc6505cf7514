import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Counters } from '../src/counters.js';
import { DEFAULT_REASSEMBLY_LIMITS, IPV4_MAX_PAYLOAD, planFragments, Reassembler, type ReassemblyLimits } from '../src/ipv4-fragment.js';
import { emitIpv4Header, IPPROTO_UDP, IPV4_HEADER_LEN, parseIpv4, type Ipv4Header } from '../src/wire/ipv4.js';

const SRC = 0x0a000001;
const DST = 0x0a000002;

function header(over: Partial<Ipv4Header> = {}): Ipv4Header {
  return {
    dscpEcn: 0,
    identification: 1,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    protocol: IPPROTO_UDP,
    src: SRC,
    dst: DST,
    ...over,
  };
}

/** One raw IPv4 packet carrying `data` at `offset` of a datagram. */
function fragment(data: Uint8Array, offset: number, more: boolean, over: Partial<Ipv4Header> = {}): Uint8Array {
  const raw = new Uint8Array(IPV4_HEADER_LEN + data.length);
  raw.set(data, IPV4_HEADER_LEN);
  emitIpv4Header(header({ ...over, fragmentOffset: offset, moreFragments: more }), data.length, raw);
  return raw;
}

/** The raw fragments of `payload` for `mtu`, in order, each a real packet. */
function fragmentsOf(payload: Uint8Array, mtu: number, over: Partial<Ipv4Header> = {}): Uint8Array[] {
  return planFragments(payload.length, mtu).map((f) => fragment(payload.subarray(f.offset, f.offset + f.length), f.offset, f.more, over));
}

function payloadOf(length: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

function setup(limits: Partial<ReassemblyLimits> = {}) {
  const counters = new Counters();
  const r = new Reassembler(limits, counters);
  const feed = (raw: Uint8Array, now = 0) => {
    const parsed = parseIpv4(raw);
    if (!parsed.ok) throw new Error(parsed.reason);
    return r.accept(parsed.value, raw, now);
  };
  return { r, counters, feed };
}

/**
 * Compares natively: toEqual walks typed arrays element by element, and its
 * diff of two 64 KiB arrays takes minutes. A failure reports lengths and the
 * first differing index instead.
 */
function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array): void {
  if (actual && Buffer.compare(actual, expected) === 0) return;
  let firstDifference = -1;
  for (let i = 0; actual && i < Math.max(actual.length, expected.length); i++) {
    if (actual[i] !== expected[i]) {
      firstDifference = i;
      break;
    }
  }
  expect({ length: actual?.length, firstDifference }).toEqual({ length: expected.length, firstDifference: -1 });
}

/** Counters other than the ones named are all zero: no drop went uncounted or was counted twice. */
function onlyCounters(counters: Counters, expected: Record<string, number>): void {
  expect(counters.snapshot()).toEqual(expected);
}

describe('planFragments', () => {
  it('leaves a payload that fits whole', () => {
    expect(planFragments(0, 1500)).toEqual([{ offset: 0, length: 0, more: false }]);
    expect(planFragments(1480, 1500)).toEqual([{ offset: 0, length: 1480, more: false }]);
  });

  it('splits at multiples of 8 below the MTU', () => {
    expect(planFragments(4000, 1500)).toEqual([
      { offset: 0, length: 1480, more: true },
      { offset: 1480, length: 1480, more: true },
      { offset: 2960, length: 1040, more: false },
    ]);
    // 1006 - 20 = 986, rounded down to 984 for every fragment but the last.
    expect(planFragments(1000, 1006)).toEqual([
      { offset: 0, length: 984, more: true },
      { offset: 984, length: 16, more: false },
    ]);
    // RFC 791's minimum MTU leaves 48 bytes a fragment.
    expect(planFragments(100, 68)).toEqual([
      { offset: 0, length: 48, more: true },
      { offset: 48, length: 48, more: true },
      { offset: 96, length: 4, more: false },
    ]);
  });

  it('throws RangeError for an MTU below 68 or an impossible payload', () => {
    for (const mtu of [67, 20, 0, -1, Number.NaN, 1500.5]) expect(() => planFragments(100, mtu)).toThrow(RangeError);
    for (const length of [-1, IPV4_MAX_PAYLOAD + 1, 1.5]) expect(() => planFragments(length, 1500)).toThrow(RangeError);
    expect(() => planFragments(IPV4_MAX_PAYLOAD, 68)).not.toThrow();
  });

  it('always tiles the payload with fragments that fit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: IPV4_MAX_PAYLOAD }), fc.integer({ min: 68, max: 70000 }), (length, mtu) => {
        const plan = planFragments(length, mtu);
        let next = 0;
        const wrong = plan.filter((f, i) => {
          const last = i === plan.length - 1;
          const ok = f.offset === next && f.more === !last && IPV4_HEADER_LEN + f.length <= Math.min(mtu, 65535) && (last || f.length % 8 === 0);
          next += f.length;
          return !ok;
        });
        expect(wrong).toEqual([]);
        expect(next).toBe(length);
      }),
      { seed: 7, numRuns: 200 },
    );
  });
});

describe('Reassembler: round trips', () => {
  const sizes = [49, 1481, 2960, 4000, 8191, IPV4_MAX_PAYLOAD];
  const mtus = [68, 576, 1006, 1500, 9000];
  const cases = sizes.flatMap((size) => mtus.map((mtu) => [size, mtu] as const)).filter(([size, mtu]) => size > mtu - IPV4_HEADER_LEN);

  it.each(cases)('%i bytes at MTU %i, in order, reversed and interleaved', (size, mtu) => {
    const { r, counters, feed } = setup({ maxFragmentsPerDatagram: 2000 });
    const payload = payloadOf(size);
    const frags = fragmentsOf(payload, mtu);
    expect(frags.length).toBeGreaterThan(1);

    const inOrder = frags.map((f) => feed(f));
    expect(inOrder.slice(0, -1).every((x) => x === undefined)).toBe(true);
    expectBytes(inOrder.at(-1), payload);

    const reversed = [...frags].reverse().map((f) => feed(f));
    expectBytes(reversed.at(-1), payload);

    // Odd ones then even ones.
    const order = [...frags.filter((_, i) => i % 2 === 1), ...frags.filter((_, i) => i % 2 === 0)];
    expectBytes(order.map((f) => feed(f)).at(-1), payload);

    expect(r.bytesHeld).toBe(0);
    expect(r.datagramsHeld).toBe(0);
    onlyCounters(counters, { 'frag.reassembled': 3 });
  });

  it('returns a fresh array the caller owns, kept apart from the packets it came from', () => {
    const { feed } = setup();
    const payload = payloadOf(3000);
    const frags = fragmentsOf(payload, 1500);
    feed(frags[0]!);
    feed(frags[1]!);
    frags[0]!.fill(0); // the caller released and reused the buffer
    frags[1]!.fill(0);
    const whole = feed(frags[2]!)!;
    expectBytes(whole, payload);
    expect(whole.byteOffset).toBe(0);
    expect(whole.buffer.byteLength).toBe(payload.length);
  });

  it('keeps datagrams apart by source, destination, protocol and identification', () => {
    const { r, counters, feed } = setup();
    const variants: Partial<Ipv4Header>[] = [{}, { src: SRC + 1 }, { dst: DST + 1 }, { protocol: 1 }, { identification: 2 }];
    const payloads = variants.map((_, i) => payloadOf(3000, i + 1));
    const frags = variants.map((v, i) => fragmentsOf(payloads[i]!, 1500, v));
    for (let k = 0; k < 2; k++) for (const f of frags) expect(feed(f[k]!)).toBeUndefined();
    expect(r.datagramsHeld).toBe(variants.length);
    frags.forEach((f, i) => expectBytes(feed(f[2]!), payloads[i]!));
    onlyCounters(counters, { 'frag.reassembled': variants.length });
  });

  it('reassembles whatever order and duplicates fragments arrive in', () => {
    const arb = fc
      .record({ payload: fc.uint8Array({ minLength: 1481, maxLength: 6000 }), mtu: fc.integer({ min: 68, max: 1500 }) })
      .chain(({ payload, mtu }) => {
        const n = planFragments(payload.length, mtu).length;
        const indices = Array.from({ length: n }, (_, i) => i);
        return fc.record({
          payload: fc.constant(payload),
          mtu: fc.constant(mtu),
          order: fc.shuffledSubarray(indices, { minLength: n, maxLength: n }),
          dups: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 8 }),
        });
      });
    fc.assert(
      fc.property(arb, ({ payload, mtu, order, dups }) => {
        const { r, counters, feed } = setup({ maxFragmentsPerDatagram: 200 });
        const frags = fragmentsOf(payload, mtu);
        // Copies of any fragment but the one arriving last, slipped in anywhere before it.
        const sequence = [...order];
        for (const [which, where] of dups) sequence.splice(where % sequence.length, 0, order[which % (order.length - 1)]!);
        const results = sequence.map((i) => feed(frags[i]!)).filter((x) => x !== undefined);
        expect(results).toHaveLength(1);
        expectBytes(results[0], payload);
        expect(r.bytesHeld).toBe(0);
        expect(r.datagramsHeld).toBe(0);
        onlyCounters(counters, dups.length ? { 'frag.reassembled': 1, 'frag.duplicate': dups.length } : { 'frag.reassembled': 1 });
      }),
      { seed: 7, numRuns: 200 },
    );
  });
});

describe('Reassembler: hostile fragments', () => {
  it('ignores an exact duplicate and counts it', () => {
    const { r, counters, feed } = setup();
    const payload = payloadOf(3000);
    const [a, b, c] = fragmentsOf(payload, 1500);
    feed(a!);
    feed(b!);
    expect(feed(a!)).toBeUndefined();
    expect(feed(b!)).toBeUndefined();
    expect(r.bytesHeld).toBe(2960);
    expectBytes(feed(c!), payload);
    onlyCounters(counters, { 'frag.duplicate': 2, 'frag.reassembled': 1 });
  });

  it('drops the whole datagram on a teardrop overlap', () => {
    const { r, counters, feed } = setup();
    // 0..24 then 16..40: the second claims bytes the first already gave.
    feed(fragment(payloadOf(24), 0, true));
    expect(r.bytesHeld).toBe(24);
    expect(feed(fragment(payloadOf(24, 2), 16, false))).toBeUndefined();
    expect(r.bytesHeld).toBe(0);
    expect(r.datagramsHeld).toBe(0);
    onlyCounters(counters, { 'drop.frag.overlap': 1, 'frag.lost.overlap': 1 });
  });

  it.each([
    ['the same range with other bytes', 64, 64],
    ['a fragment inside one held', 72, 16],
    ['a fragment covering one held', 56, 80],
    ['a fragment ending inside one held', 32, 40],
    ['a fragment starting inside one held', 120, 16],
  ])('counts %s as an overlap', (_name, offset, length) => {
    const { r, counters, feed } = setup();
    feed(fragment(payloadOf(64), 64, true)); // held: bytes 64..128
    feed(fragment(payloadOf(length, 9), offset, true));
    expect(r.datagramsHeld).toBe(0);
    expect(r.bytesHeld).toBe(0);
    onlyCounters(counters, { 'drop.frag.overlap': 1, 'frag.lost.overlap': 1 });
  });

  it('accepts fragments that only touch', () => {
    const { r, counters, feed } = setup();
    feed(fragment(payloadOf(64), 64, true));
    feed(fragment(payloadOf(64), 0, true));
    feed(fragment(payloadOf(8), 128, true));
    expect(r.bytesHeld).toBe(136);
    onlyCounters(counters, {});
  });

  it('drops the datagram when fragments disagree about where it ends', () => {
    const cases: [Uint8Array, Uint8Array][] = [
      // Two last fragments with different ends.
      [fragment(payloadOf(8), 16, false), fragment(payloadOf(8), 32, false)],
      // A fragment with more to come that reaches the announced end.
      [fragment(payloadOf(8), 16, false), fragment(payloadOf(16), 8, true)],
      // A last fragment ending before data already held.
      [fragment(payloadOf(8), 32, true), fragment(payloadOf(8), 8, false)],
    ];
    for (const [first, second] of cases) {
      const { r, counters, feed } = setup();
      feed(first);
      expect(feed(second)).toBeUndefined();
      expect(r.datagramsHeld).toBe(0);
      expect(r.bytesHeld).toBe(0);
      onlyCounters(counters, { 'drop.frag.inconsistent': 1, 'frag.lost.inconsistent': 1 });
    }
  });

  it('drops fragments that are bad on their own, holding nothing', () => {
    const cases: [Uint8Array, string][] = [
      [fragment(payloadOf(12), 0, true), 'drop.frag.misaligned'],
      [fragment(new Uint8Array(0), 8, true), 'drop.frag.empty'],
      [fragment(new Uint8Array(0), 8, false), 'drop.frag.empty'],
      // The ping of death: 65512 + 8 is past 65515.
      [fragment(payloadOf(8), 65512, false), 'drop.frag.tooBig'],
      [fragment(payloadOf(8), 0, false), 'drop.frag.notFragment'],
    ];
    for (const [raw, counter] of cases) {
      const { r, counters, feed } = setup();
      expect(feed(raw)).toBeUndefined();
      expect(r.datagramsHeld).toBe(0);
      onlyCounters(counters, { [counter]: 1 });
    }
  });

  it('drops a misaligned fragment alone, leaving the datagram to complete', () => {
    const { counters, feed } = setup();
    const payload = payloadOf(3000);
    const [a, b, c] = fragmentsOf(payload, 1500);
    feed(a!);
    feed(fragment(payloadOf(13), 1480, true));
    feed(b!);
    expectBytes(feed(c!), payload);
    onlyCounters(counters, { 'drop.frag.misaligned': 1, 'frag.reassembled': 1 });
  });
});

describe('Reassembler: limits', () => {
  it('discards a datagram needing more than maxFragmentsPerDatagram', () => {
    const { r, counters, feed } = setup({ maxFragmentsPerDatagram: 2 });
    const [a, b, c] = fragmentsOf(payloadOf(3000), 1500);
    feed(a!);
    feed(b!);
    expect(feed(c!)).toBeUndefined();
    expect(r.datagramsHeld).toBe(0);
    expect(r.bytesHeld).toBe(0);
    onlyCounters(counters, { 'drop.frag.limitFragments': 1, 'frag.lost.limitFragments': 1 });
  });

  it('evicts the oldest datagram beyond maxDatagrams', () => {
    const { r, counters, feed } = setup({ maxDatagrams: 2 });
    const frags = [1, 2, 3].map((id) => fragmentsOf(payloadOf(3000, id), 1500, { identification: id }));
    for (const f of frags) feed(f[0]!);
    expect(r.datagramsHeld).toBe(2);
    expect(counters.get('frag.lost.limitDatagrams')).toBe(1);
    // 1 was evicted: its last fragments start a new datagram that cannot complete; 2 and 3 can.
    expect(feed(frags[0]![1]!)).toBeUndefined();
    expect(counters.get('frag.lost.limitDatagrams')).toBe(2); // that new datagram pushed out 2
    expect(feed(frags[2]![1]!)).toBeUndefined();
    expectBytes(feed(frags[2]![2]!), payloadOf(3000, 3));
  });

  it('evicts the oldest datagrams to stay within maxBytes', () => {
    const { r, counters, feed } = setup({ maxBytes: 3000 });
    const frags = [1, 2, 3].map((id) => fragmentsOf(payloadOf(3000, id), 1500, { identification: id }));
    feed(frags[0]![0]!);
    feed(frags[1]![0]!);
    expect(r.bytesHeld).toBe(2960);
    feed(frags[2]![0]!); // 1480 more than fits: datagram 1 goes
    expect(r.bytesHeld).toBe(2960);
    expect(r.datagramsHeld).toBe(2);
    onlyCounters(counters, { 'frag.lost.limitBytes': 1 });
  });

  it('never evicts the datagram being added to, and drops one that can never fit', () => {
    const { r, counters, feed } = setup({ maxBytes: 2000 });
    const [a, b] = fragmentsOf(payloadOf(4000), 1500);
    const other = fragmentsOf(payloadOf(600, 5), 576, { identification: 5 });
    feed(other[0]!); // 552 bytes
    feed(a!); // 1480: 2032 > 2000, so `other` goes
    expect(counters.get('frag.lost.limitBytes')).toBe(1);
    expect(r.bytesHeld).toBe(1480);
    feed(b!); // this datagram alone would hold 2960 > 2000: it can never complete
    expect(r.bytesHeld).toBe(0);
    expect(r.datagramsHeld).toBe(0);
    // `other` evicted; then the growing datagram thrown away, with the fragment that would not fit.
    onlyCounters(counters, { 'frag.lost.limitBytes': 2, 'drop.frag.limitBytes': 1 });
  });

  it('evicts others, never the oldest datagram when it is the one growing', () => {
    const { r, counters, feed } = setup({ maxBytes: 3000 });
    const payload = payloadOf(2960, 1);
    const [a1, a2] = fragmentsOf(payload, 1500, { identification: 1 });
    feed(a1!);
    feed(fragmentsOf(payloadOf(3000, 2), 1500, { identification: 2 })[0]!);
    expectBytes(feed(a2!), payload); // 1 is the oldest, but 2 makes way
    expect(r.bytesHeld).toBe(0);
    expect(r.datagramsHeld).toBe(0);
    onlyCounters(counters, { 'frag.lost.limitBytes': 1, 'frag.reassembled': 1 });
  });

  it('refuses a single fragment larger than maxBytes without evicting anything', () => {
    const { r, counters, feed } = setup({ maxBytes: 1000 });
    feed(fragment(payloadOf(512), 0, true, { identification: 9 }));
    feed(fragment(payloadOf(1480), 0, true));
    expect(r.bytesHeld).toBe(512);
    onlyCounters(counters, { 'drop.frag.limitBytes': 1 });
  });

  it('rejects limits that are not positive', () => {
    expect(() => new Reassembler({ maxBytes: 0 }, new Counters())).toThrow(RangeError);
    expect(() => new Reassembler({ timeoutMs: Number.NaN }, new Counters())).toThrow(RangeError);
    expect(DEFAULT_REASSEMBLY_LIMITS).toEqual({ maxBytes: 262144, maxDatagrams: 64, maxFragmentsPerDatagram: 64, timeoutMs: 30000 });
  });

  // 1480-byte fragments hit maxDatagrams first (64 x 1480 < 256 KiB); 8000-byte ones (jumbo frames) hit maxBytes.
  it.each([1480, 8000])('holds at most maxBytes under a flood of %i-byte bogus first fragments, and a real datagram still gets through', (size) => {
    const { r, counters, feed } = setup();
    const { maxBytes, maxDatagrams } = DEFAULT_REASSEMBLY_LIMITS;
    const bogus = payloadOf(size, 3);
    const payload = payloadOf(4000, 4);
    const real = fragmentsOf(payload, 1500, { src: 0x0a000063, identification: 7 });
    let delivered: Uint8Array | undefined;
    let peakBytes = 0;
    let peakDatagrams = 0;
    for (let i = 0; i < 5000; i++) {
      const now = i; // a fragment a millisecond, all within one timeout
      feed(fragment(bogus, 0, true, { identification: i }), now);
      if (i >= 2500 && i < 2500 + real.length) delivered = feed(real[i - 2500]!, now) ?? delivered;
      peakBytes = Math.max(peakBytes, r.bytesHeld);
      peakDatagrams = Math.max(peakDatagrams, r.datagramsHeld);
    }
    expect(peakBytes).toBeLessThanOrEqual(maxBytes);
    expect(peakDatagrams).toBeLessThanOrEqual(maxDatagrams);
    expect(counters.get(size === 1480 ? 'frag.lost.limitDatagrams' : 'frag.lost.limitBytes')).toBeGreaterThan(4900);
    expectBytes(delivered, payload);
    // Every bogus datagram no longer held was evicted and counted as such.
    expect(counters.total('frag.lost.limit')).toBe(5000 - r.datagramsHeld);
    const { expired, deadline } = r.poll(5000 + 30_000);
    expect(expired.length + counters.total('frag.lost.limit')).toBe(5000);
    expect(deadline).toBeUndefined();
    expect(r.bytesHeld).toBe(0);
    expect(r.datagramsHeld).toBe(0);
  });
});

describe('Reassembler: timeouts', () => {
  it('expires a datagram timeoutMs after its first fragment, quoting that fragment for ICMP', () => {
    const { r, counters, feed } = setup();
    const frags = fragmentsOf(payloadOf(4000), 1500, { identification: 0x1234 });
    feed(frags[1]!, 100);
    feed(frags[0]!, 20_000); // later fragments do not extend the deadline
    expect(r.poll(30_099)).toEqual({ deadline: 30_100, expired: [] });
    const { deadline, expired } = r.poll(30_100);
    expect(deadline).toBeUndefined();
    expect(expired).toEqual([
      { src: SRC, dst: DST, protocol: IPPROTO_UDP, identification: 0x1234, firstFragment: frags[0]!.subarray(0, IPV4_HEADER_LEN + 8) },
    ]);
    expect(r.bytesHeld).toBe(0);
    onlyCounters(counters, { 'frag.lost.timeout': 1 });
  });

  it('reports no first fragment when it never came', () => {
    const { r, feed } = setup();
    feed(fragmentsOf(payloadOf(4000), 1500)[2]!, 0);
    expect(r.poll(30_000).expired[0]!.firstFragment).toBeUndefined();
  });

  it('quotes only the packet, not the link padding after it', () => {
    const { r } = setup();
    const raw = new Uint8Array(60).fill(0xee); // a short first fragment in a padded Ethernet payload
    raw.set(fragment(payloadOf(8), 0, true));
    const p = parseIpv4(raw);
    if (!p.ok) throw new Error(p.reason);
    r.accept(p.value, raw, 0);
    expect(r.poll(30_000).expired[0]!.firstFragment).toEqual(raw.subarray(0, 28));
  });

  it('gives the earliest deadline across datagrams', () => {
    const { r, feed } = setup({ timeoutMs: 1000 });
    feed(fragment(payloadOf(8), 0, true, { identification: 1 }), 50);
    feed(fragment(payloadOf(8), 0, true, { identification: 2 }), 10);
    expect(r.poll(0).deadline).toBe(1010);
    expect(r.poll(1010)).toMatchObject({ deadline: 1050, expired: [{ identification: 2 }] });
    expect(r.poll(1050)).toMatchObject({ deadline: undefined, expired: [{ identification: 1 }] });
    expect(r.poll(5000)).toEqual({ deadline: undefined, expired: [] });
  });

  it('never completes a datagram past its deadline, even when the caller polls late', () => {
    const { r, counters, feed } = setup();
    const [a, b] = fragmentsOf(payloadOf(2000), 1500);
    feed(a!, 0);
    expect(feed(b!, 30_000)).toBeUndefined(); // too late: the first half is gone, this starts afresh
    expect(r.datagramsHeld).toBe(1);
    expect(r.bytesHeld).toBe(520);
    const { expired, deadline } = r.poll(30_001);
    expect(expired).toHaveLength(1);
    expect(expired[0]!.firstFragment).toEqual(a!.subarray(0, 28));
    expect(deadline).toBe(60_000);
    onlyCounters(counters, { 'frag.lost.timeout': 1 });
  });
});
