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
