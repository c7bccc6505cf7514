import { describe, expect, it } from 'vitest';
import { Account, BufferPool, DEFAULT_LIMITS } from '../src/index.js';

const account = (maxBufferBytes = 1 << 20) => new Account({ ...DEFAULT_LIMITS, maxBufferBytes });

describe('BufferPool', () => {
  it('charges and uncharges the owner by size class', () => {
    const pool = new BufferPool();
    const a = account();
    const buf = pool.allocate(1000, a)!;
    expect(buf.bytes.length).toBe(1000);
    expect(a.buffers).toBe(1);
    expect(a.bufferBytes).toBe(2048);
    buf.release();
    expect(a.empty).toBe(true);
    expect(pool.stats().inUseBuffers).toBe(0);
  });

  it('clears a buffer before anyone else can get it', () => {
    const pool = new BufferPool();
    const first = pool.allocate(100, account())!;
    first.bytes.fill(0xaa);
    first.release();
    const second = pool.allocate(2000, account())!;
    expect(second.bytes.every((b) => b === 0)).toBe(true);
  });

  it('refuses past the domain share without touching other domains', () => {
    const pool = new BufferPool();
    const greedy = account(4096);
    const other = account(4096);
    expect(pool.allocate(2048, greedy)).not.toBeNull();
    expect(pool.allocate(2048, greedy)).not.toBeNull();
    expect(pool.allocate(1, greedy)).toBeNull();
    expect(pool.allocate(2048, other)).not.toBeNull();
    expect(pool.stats().failures).toBe(1);
  });

  it('refuses past the pool capacity and sizes beyond the largest class', () => {
    const pool = new BufferPool(4096);
    const a = account();
    expect(pool.allocate(70000, a)).toBeNull();
    pool.allocate(2048, a);
    pool.allocate(2048, a);
    expect(pool.allocate(10, a)).toBeNull();
  });

  it('throws on a double release (a kernel bug, never silent)', () => {
    const buf = new BufferPool().allocate(10, account())!;
    buf.release();
    expect(() => buf.release()).toThrow(/twice/);
  });
});

describe('BufferPool reservations (a reserved minimum, invariant 5)', () => {
  const reserving = (reservedBufferBytes: number) => new Account({ ...DEFAULT_LIMITS, maxBufferBytes: 1 << 20, reservedBufferBytes });

  it('keeps a reserved minimum free for its domain when a neighbour exhausts the pool', () => {
    const pool = new BufferPool(64 * 1024);
    const ota = reserving(16 * 1024);
    expect(pool.reserve(ota)).toBe(true);
    const greedy = account();
    const taken = [];
    for (let b = pool.allocate(2000, greedy); b; b = pool.allocate(2000, greedy)) taken.push(b);
    expect(greedy.bufferBytes).toBe(48 * 1024); // everything but the reservation
    expect(pool.stats().reservedBytes).toBe(16 * 1024);
    const mine = [];
    for (let b = pool.allocate(2000, ota); b; b = pool.allocate(2000, ota)) mine.push(b);
    expect(ota.bufferBytes).toBe(16 * 1024); // the whole reservation, and nothing of the neighbour's
    expect(pool.stats().reservedBytes).toBe(0);
    // Giving back makes the room reserved again, not free for the neighbour.
    mine.pop()!.release();
    expect(pool.allocate(2000, greedy)).toBeNull();
    expect(pool.allocate(2000, ota)).not.toBeNull();
    for (const b of [...taken, ...mine]) b.release();
  });

  it('refuses a reservation the pool cannot promise, and frees it when the domain goes', () => {
    const pool = new BufferPool(64 * 1024);
    const a = reserving(40 * 1024);
    const b = reserving(40 * 1024);
    expect(pool.reserve(a)).toBe(true);
    expect(pool.reserve(b)).toBe(false);
    pool.unreserve(a);
    expect(pool.stats().reservedBytes).toBe(0);
    expect(pool.reserve(b)).toBe(true);
    pool.unreserve(b);
  });
});
