/**
 * The byte stores of the TCP data path: the receiver's out-of-order queue and
 * the send/receive ring buffer. Property tests compare them with plain models
 * (the original byte stream, an array of bytes) under fixed seeds.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { MAX_SACK_BLOCKS, OooQueue } from '../src/tcp/ooo-queue.js';
import { StreamBuffer } from '../src/tcp/stream-buffer.js';
import { seqAdd, seqInWindow, seqSub } from '../src/tcp/seq.js';
import { Xoshiro128 } from '../src/link/rng.js';

const bytes = (...xs: number[]) => Uint8Array.from(xs);
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

describe('OooQueue', () => {
  it('keeps the bytes it already holds when a segment overlaps them', () => {
    const q = new OooQueue({ maxBytes: 1000 });
    expect(q.insert(100, fill(4, 1))).toBe('stored');
    expect(q.insert(98, fill(8, 2))).toBe('stored'); // fills [98,100) and [104,106) only
    expect([q.bytes, q.segments]).toEqual([8, 3]);
    expect(q.insert(99, fill(3, 3))).toBe('duplicate');
    expect([...q.take(98)]).toEqual([2, 2, 1, 1, 1, 1, 2, 2]);
    expect([q.bytes, q.segments, q.isEmpty]).toEqual([0, 0, true]);
  });

  it('delivers nothing while the byte at RCV.NXT is missing', () => {
    const q = new OooQueue({ maxBytes: 1000 });
    q.insert(1010, bytes(1, 2));
    expect(q.take(1000).length).toBe(0);
    q.insert(1000, fill(10, 9));
    expect(q.take(1000).length).toBe(12);
  });

  it('copies what it stores', () => {
    const q = new OooQueue({ maxBytes: 1000 });
    const packet = bytes(1, 2, 3);
    q.insert(5, packet);
    packet.fill(0); // the packet buffer is cleared and reused
    expect([...q.take(5)]).toEqual([1, 2, 3]);
  });

  it('discards bytes before RCV.NXT that arrived by another path', () => {
    const q = new OooQueue({ maxBytes: 1000 });
    q.insert(100, bytes(1, 2, 3, 4));
    q.insert(200, bytes(5, 6));
    expect([...q.take(102)]).toEqual([3, 4]);
    expect(q.take(300).length).toBe(0); // [200, 202) is stale too
    expect(q.isEmpty).toBe(true);
  });

  it('delivers at most the limit and keeps the rest', () => {
    const q = new OooQueue({ maxBytes: 1000 });
    q.insert(0, bytes(1, 2));
    q.insert(2, bytes(3, 4, 5));
    expect([...q.take(0, 3)]).toEqual([1, 2, 3]);
    expect(q.bytes).toBe(2);
    expect(q.take(3, 0).length).toBe(0);
    expect([...q.take(3)]).toEqual([4, 5]);
    expect(() => q.take(0, -1)).toThrow(RangeError);
  });

  it('refuses a segment over the byte limit, whole, and counts it', () => {
    const q = new OooQueue({ maxBytes: 10 });
    expect(q.insert(100, fill(8, 1))).toBe('stored');
    expect(q.insert(200, fill(3, 2))).toBe('refused');
    expect(q.insert(96, fill(8, 3))).toBe('refused'); // only [96,100) is new, but 8 + 4 > 10
    expect(q.insert(98, fill(4, 3))).toBe('stored'); // [98,100) is new: 8 + 2 = 10
    expect([q.bytes, q.refusedSegments, q.refusedBytes]).toEqual([10, 2, 7]);
  });

  it('refuses a segment over the piece limit', () => {
    const q = new OooQueue({ maxBytes: 1000, maxSegments: 4 });
    for (let i = 0; i < 3; i++) expect(q.insert(i * 2, bytes(i))).toBe('stored'); // 1-byte holes between
    expect(q.insert(0, bytes(0, 7, 1, 7, 2))).toBe('refused'); // would add two pieces
    expect(q.insert(0, bytes(0, 7))).toBe('stored'); // one piece
    expect(q.insert(10, bytes(9))).toBe('refused');
    expect([q.segments, q.bytes, q.refusedSegments]).toEqual([4, 4, 2]);
    expect([...q.take(0)]).toEqual([0, 7, 1]);
  });

  it('sizes the piece limit from the byte limit by default', () => {
    expect(new OooQueue({ maxBytes: 1 << 20 }).maxSegments).toBe(2048);
    expect(new OooQueue({ maxBytes: 1000 }).maxSegments).toBe(64);
    expect(() => new OooQueue({ maxBytes: -1 })).toThrow(RangeError);
    expect(() => new OooQueue({ maxBytes: 10, maxSegments: 1.5 })).toThrow(RangeError);
  });

  it('reports SACK blocks most recent first (RFC 2018 4)', () => {
    // RFC 2018 4's example flavour: RCV.NXT = 5000, segments of 500 bytes, some lost.
    const q = new OooQueue({ maxBytes: 100_000 });
    q.insert(5500, fill(500, 1));
    expect(q.sackBlocks()).toEqual([{ left: 5500, right: 6000 }]);
    q.insert(6500, fill(500, 1));
    expect(q.sackBlocks()).toEqual([
      { left: 6500, right: 7000 },
      { left: 5500, right: 6000 },
    ]);
    q.insert(7500, fill(500, 1));
    q.insert(6000, fill(500, 1)); // joins the first two blocks
    expect(q.sackBlocks()).toEqual([
      { left: 5500, right: 7000 },
      { left: 7500, right: 8000 },
    ]);
    q.insert(7600, fill(100, 1)); // a duplicate makes its block the most recent
    expect(q.sackBlocks()[0]).toEqual({ left: 7500, right: 8000 });
    for (let i = 0; i < 5; i++) q.insert(9000 + i * 1000, fill(10, 1));
    expect(q.sackBlocks().length).toBe(MAX_SACK_BLOCKS);
    expect(q.sackBlocks(3)).toEqual([
      { left: 13000, right: 13010 },
      { left: 12000, right: 12010 },
      { left: 11000, right: 11010 },
    ]);
    expect(q.sackBlocks(0)).toEqual([]);
  });

  it('works across the sequence-space wrap', () => {
    const q = new OooQueue({ maxBytes: 1000 });
    q.insert(0xfffffffe, bytes(1, 2));
    q.insert(0, bytes(3, 4));
    q.insert(0xfffffffc, bytes(9, 9, 9, 9)); // overlaps both: only [0xfffffffc, 0xfffffffe) is new
    expect(q.sackBlocks()).toEqual([{ left: 0xfffffffc, right: 2 }]);
    expect([...q.take(0xfffffffc)]).toEqual([9, 9, 1, 2, 3, 4]);
  });

  it('clears', () => {
    const q = new OooQueue({ maxBytes: 1000 });
    q.insert(5, bytes(1));
    q.clear();
    expect([q.bytes, q.segments, q.isEmpty, q.sackBlocks()]).toEqual([0, 0, true, []]);
  });

  /**
   * A stream of up to 3000 bytes (from 2^32 - 3000 on half the time, so it crosses the wrap) cut
   * into segments, some resent with other boundaries (retransmissions), duplicated and shuffled.
   */
  const arrivals = fc
    .record({
      iss: fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 2 ** 32 - 3000, max: 2 ** 32 - 1 })),
      length: fc.integer({ min: 1, max: 3000 }),
      cuts: fc.array(fc.nat(), { maxLength: 40, size: 'max' }),
      extra: fc.array(fc.record({ at: fc.nat(), len: fc.integer({ min: 1, max: 400 }) }), { maxLength: 20, size: 'max' }),
      seed: fc.integer(),
    })
    .map(({ iss, length, cuts, extra, seed }) => {
      const rng = new Xoshiro128(seed);
      const data = Uint8Array.from({ length }, () => rng.nextUint32() & 0xff);
      const points = [...new Set([0, ...cuts.map((c) => c % length), length])].sort((a, b) => a - b);
      const segs: Array<[number, number]> = [];
      for (let i = 1; i < points.length; i++) segs.push([points[i - 1]!, points[i]!]);
      for (const { at, len } of extra) segs.push([at % length, Math.min(length, (at % length) + len)]);
      for (const s of [...segs]) if (rng.nextFloat() < 0.2) segs.push(s); // duplicates
      for (let i = segs.length - 1; i > 0; i--) {
        const j = rng.nextUint32() % (i + 1);
        [segs[i], segs[j]] = [segs[j]!, segs[i]!];
      }
      return { iss, data, segs };
    });

  it('reassembles any segmentation, duplication and reordering of a stream', () => {
    fc.assert(
      fc.property(arrivals, ({ iss, data, segs }) => {
        const q = new OooQueue({ maxBytes: 1 << 20 });
        let rcvNxt = iss;
        const out: number[] = [];
        for (const [a, b] of segs) {
          q.insert(seqAdd(iss, a), data.subarray(a, b));
          const got = q.take(rcvNxt);
          out.push(...got);
          rcvNxt = seqAdd(rcvNxt, got.length);
          // Invariants: blocks are beyond RCV.NXT (before the next take only), disjoint, never touching.
          const blocks = q.sackBlocks(MAX_SACK_BLOCKS);
          expect(blocks.length).toBeLessThanOrEqual(MAX_SACK_BLOCKS);
          for (const x of blocks) {
            expect(seqSub(x.left, rcvNxt)).toBeGreaterThan(0);
            for (const y of blocks) if (x !== y) expect(seqInWindow(x.left, y.left, seqSub(y.right, y.left) + 1)).toBe(false);
          }
        }
        expect(Uint8Array.from(out)).toEqual(data);
        expect([q.bytes, q.segments, q.isEmpty]).toEqual([0, 0, true]);
      }),
      { seed: 21, numRuns: 80 },
    );
  });

  it('reassembles under tight limits when the caller delivers in order directly and the peer retransmits', () => {
    fc.assert(
      fc.property(arrivals, fc.integer({ min: 0, max: 600 }), fc.integer({ min: 1, max: 8 }), ({ iss, data, segs }, maxBytes, maxSegments) => {
        const q = new OooQueue({ maxBytes, maxSegments });
        let rcvNxt = iss;
        const out: number[] = [];
        const deliver = (got: Uint8Array) => {
          out.push(...got);
          rcvNxt = seqAdd(rcvNxt, got.length);
        };
        // The peer keeps resending what is unacknowledged until all has arrived (a go-back-N round).
        for (let round = 0; out.length < data.length; round++) {
          expect(round).toBeLessThan(data.length + 2);
          for (const [a, b] of segs) {
            const seq = seqAdd(iss, a);
            const d = seqSub(rcvNxt, seq);
            if (d >= 0 && d < b - a) {
              deliver(data.subarray(a + d, b)); // the segment at RCV.NXT: straight to the receive buffer
              deliver(q.take(rcvNxt));
            } else if (d < 0) q.insert(seq, data.subarray(a, b));
            expect(q.bytes).toBeLessThanOrEqual(maxBytes);
            expect(q.segments).toBeLessThanOrEqual(maxSegments);
          }
        }
        expect(Uint8Array.from(out)).toEqual(data);
      }),
      { seed: 22, numRuns: 200 },
    );
  });

  it('puts the block of the last segment first', () => {
    fc.assert(
      fc.property(arrivals, ({ iss, data, segs }) => {
        const q = new OooQueue({ maxBytes: 1 << 20 });
        for (const [a, b] of segs) {
          if (a === 0) continue; // keep a hole at RCV.NXT so nothing is delivered
          const seq = seqAdd(iss, a);
          q.insert(seq, data.subarray(a, b));
          const first = q.sackBlocks(1)[0]!;
          expect(seqInWindow(seq, first.left, seqSub(first.right, first.left))).toBe(true);
          expect(seqInWindow(seqAdd(seq, b - a - 1), first.left, seqSub(first.right, first.left))).toBe(true);
        }
      }),
      { seed: 23, numRuns: 200 },
    );
  });
});

describe('StreamBuffer', () => {
  it('accepts a partial write when nearly full, and nothing when full', () => {
    const b = new StreamBuffer(5);
    expect(b.write(bytes(1, 2, 3))).toBe(3);
    expect(b.write(bytes(4, 5, 6, 7))).toBe(2);
    expect(b.write(bytes(8))).toBe(0);
    expect([b.length, b.free, b.capacity]).toEqual([5, 0, 5]);
    expect([...b.read()]).toEqual([1, 2, 3, 4, 5]);
    expect(new StreamBuffer(0).write(bytes(1))).toBe(0);
  });

  it('takes writes out of shared memory in any phase against its tail, whole and in order', () => {
    const shared = new Uint8Array(new SharedArrayBuffer(4096));
    for (let i = 0; i < shared.length; i++) shared[i] = (i * 13 + 5) & 0xff;
    for (let tailPhase = 0; tailPhase < 8; tailPhase++) {
      for (let sourcePhase = 0; sourcePhase < 8; sourcePhase++) {
        const b = new StreamBuffer(1000);
        b.write(new Uint8Array(tailPhase).fill(0xaa));
        const source = shared.subarray(64 + sourcePhase, 64 + sourcePhase + 900);
        expect(b.write(source)).toBe(900);
        b.consume(tailPhase);
        expect(Buffer.from(b.read()).equals(Buffer.from(source))).toBe(true);
      }
    }
    // Across the end of the ring too.
    const b = new StreamBuffer(1024);
    b.write(new Uint8Array(1000));
    b.consume(997);
    const source = shared.subarray(3, 803);
    b.write(source);
    b.consume(3);
    expect(Buffer.from(b.read()).equals(Buffer.from(source))).toBe(true);
  });

  it('reads across the end of the ring', () => {
    const b = new StreamBuffer(4);
    b.write(bytes(1, 2, 3));
    b.consume(2);
    b.write(bytes(4, 5, 6)); // storage [5,6,3,4] with head at 2
    expect([...b.peek()]).toEqual([3, 4, 5, 6]);
    expect([...b.slice(1, 2)]).toEqual([4, 5]);
    const frame = new Uint8Array(6);
    expect(b.copyTo(1, 10, frame, 2)).toBe(3);
    expect([...frame]).toEqual([0, 0, 4, 5, 6, 0]);
    expect([...b.read(3)]).toEqual([3, 4, 5]);
    expect([...b.read(3)]).toEqual([6]);
  });

  it('views across the end of the ring in scratch memory, lent to one view at a time', () => {
    const b = new StreamBuffer(8);
    b.write(bytes(1, 2, 3, 4, 5, 6));
    b.consume(4);
    b.write(bytes(7, 8, 9, 10)); // storage [9,10,_,_,5,6,7,8] with head at 4
    const first = b.view(1, 5);
    const second = b.view(0, 6); // wraps too while the first is lent: a copy of its own
    expect([...first]).toEqual([6, 7, 8, 9, 10]);
    expect([...second]).toEqual([5, 6, 7, 8, 9, 10]);
    expect(second.buffer).not.toBe(first.buffer);
    expect([...b.view(0, 3)]).toEqual([5, 6, 7]); // in one piece: a view of the storage
    b.consume(1); // the views end: the scratch is free again
    const again = b.view(0, 5);
    expect(again.buffer).toBe(first.buffer);
    expect([...again]).toEqual([6, 7, 8, 9, 10]);
  });

  it('slices for retransmission from the unacknowledged start', () => {
    const b = new StreamBuffer(100);
    b.write(Uint8Array.from({ length: 50 }, (_, i) => i));
    expect([...b.slice(10, 5)]).toEqual([10, 11, 12, 13, 14]);
    expect([...b.slice(48, 10)]).toEqual([48, 49]);
    expect(b.slice(50, 10).length).toBe(0);
    b.consume(20); // acknowledged
    expect([...b.slice(0, 3)]).toEqual([20, 21, 22]);
    expect(() => b.slice(31, 1)).toThrow(RangeError);
    expect(() => b.slice(-1, 1)).toThrow(RangeError);
    expect(() => b.consume(31)).toThrow(RangeError);
    expect(() => b.copyTo(0, 10, new Uint8Array(5))).toThrow(RangeError);
  });

  it('resizes, but not below what it holds', () => {
    const b = new StreamBuffer(8);
    b.write(bytes(1, 2, 3, 4, 5, 6));
    b.consume(4);
    b.write(bytes(7, 8, 9)); // wraps
    b.resize(5);
    expect([b.capacity, b.free]).toEqual([5, 0]);
    expect([...b.peek()]).toEqual([5, 6, 7, 8, 9]);
    expect(() => b.resize(4)).toThrow(RangeError);
    b.resize(1 << 16);
    expect(b.write(new Uint8Array(5000))).toBe(5000);
    expect([...b.slice(0, 5)]).toEqual([5, 6, 7, 8, 9]);
  });

  it('clears', () => {
    const b = new StreamBuffer(8);
    b.write(bytes(1, 2, 3));
    b.clear();
    expect([b.length, b.free]).toEqual([0, 8]);
    b.write(bytes(4));
    expect([...b.peek()]).toEqual([4]);
  });

  it('leaves a view taken before a clear as it was (a gathered packet may still hold it), and later bytes out of it', () => {
    const b = new StreamBuffer(8);
    b.write(bytes(1, 2, 3));
    const v = b.view(0, 3);
    b.clear();
    b.write(bytes(9, 9, 9));
    expect([...v]).toEqual([1, 2, 3]);
  });

  it('says which views are in its scratch memory: those that wrap, and only until the next write', () => {
    const b = new StreamBuffer(8);
    b.write(bytes(1, 2, 3, 4, 5, 6));
    b.consume(4);
    b.write(bytes(7, 8, 9, 10));
    const flat = b.view(0, 4);
    const wrapped = b.view(0, 6);
    expect([...wrapped]).toEqual([5, 6, 7, 8, 9, 10]);
    expect([b.inScratch(flat), b.inScratch(wrapped)]).toEqual([false, true]);
    // Lent already: another wrapped view is a copy of its own.
    expect(b.inScratch(b.view(1, 5))).toBe(false);
  });

  it('behaves as a plain array of bytes', () => {
    type Op =
      | { op: 'write'; data: Uint8Array }
      | { op: 'read' | 'peek' | 'consume'; n: number }
      | { op: 'slice'; offset: number; n: number }
      | { op: 'resize'; capacity: number }
      | { op: 'clear' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .record({ n: fc.nat(3000), from: fc.nat(255) })
          .map(({ n, from }) => ({ op: 'write' as const, data: Uint8Array.from({ length: n }, (_, i) => (from + i * 7) & 0xff) })),
      },
      { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('read' as const, 'peek' as const, 'consume' as const), n: fc.nat(3000) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('slice' as const), offset: fc.nat(3000), n: fc.nat(3000) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('resize' as const), capacity: fc.nat(5000) }) },
      { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
    );
    fc.assert(
      fc.property(fc.nat(5000), fc.array(op, { maxLength: 60, size: 'max' }), (capacity, ops) => {
        const b = new StreamBuffer(capacity);
        let cap = capacity;
        let model: number[] = [];
        for (const o of ops) {
          switch (o.op) {
            case 'write': {
              const took = Math.min(o.data.length, cap - model.length);
              expect(b.write(o.data)).toBe(took);
              model.push(...o.data.subarray(0, took));
              break;
            }
            case 'read':
              expect([...b.read(o.n)]).toEqual(model.slice(0, o.n));
              model = model.slice(o.n);
              break;
            case 'peek':
              expect([...b.peek(o.n)]).toEqual(model.slice(0, o.n));
              break;
            case 'consume': {
              const n = Math.min(o.n, model.length);
              b.consume(n);
              model = model.slice(n);
              break;
            }
            case 'slice':
              if (o.offset > model.length) expect(() => b.slice(o.offset, o.n)).toThrow(RangeError);
              else expect([...b.slice(o.offset, o.n)]).toEqual(model.slice(o.offset, o.offset + o.n));
              break;
            case 'resize':
              if (o.capacity < model.length) expect(() => b.resize(o.capacity)).toThrow(RangeError);
              else {
                b.resize(o.capacity);
                cap = o.capacity;
              }
              break;
            case 'clear':
              b.clear();
              model = [];
              break;
          }
          expect([b.length, b.free, b.capacity]).toEqual([model.length, cap - model.length, cap]);
        }
        expect([...b.peek()]).toEqual(model);
      }),
      { seed: 31, numRuns: 300 },
    );
  });
});
