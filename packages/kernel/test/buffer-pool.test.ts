import { describe, expect, it } from 'vitest';
import { Account, BufferPool, DEFAULT_LIMITS } from '../src/index.js';
import { AF_INET, Errno, MSG_DONTWAIT, SOCK_DGRAM } from '@moat/abi';
import { kernelWithDomains } from './harness.js';

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

describe("the stack's reserve in a kernel's pool", () => {
  it('keeps buffers for the stack\'s own frames however much a domain takes', async () => {
    const { kernel, attach } = kernelWithDomains({ poolBytes: 256 * 1024 });
    expect(kernel.pool.stats().reservedBytes).toBe(32 * 1024);
    const greedy = attach('greedy', { maxBufferBytes: 1 << 20 });
    // Datagrams queued to its own sockets, several of them: one socket's receive buffer would drop the rest.
    const sockets: number[] = [];
    for (let port = 6000; port < 6008; port++) {
      const [, s] = await greedy.call('socket', AF_INET, SOCK_DGRAM, 0);
      await greedy.call('bind', s, { addr: '127.0.0.1', port });
      sockets.push(s);
    }
    // More than the pool holds: once it is full the datagrams are dropped on arrival (or refused with ENOBUFS).
    for (let i = 0; i < 400; i++) {
      const [errno] = await greedy.call('sendto', sockets[i % 8]!, new Uint8Array(4000), MSG_DONTWAIT, { addr: '127.0.0.1', port: 6000 + (i % 8) });
      expect([0, Errno.ENOBUFS]).toContain(errno);
    }
    const taken = kernel.stats().domains[0]!.accounting.bufferBytes;
    expect(taken).toBeLessThanOrEqual(256 * 1024 - 32 * 1024);
    expect(taken).toBeGreaterThan(256 * 1024 - 32 * 1024 - 8192); // the pool was full but for the reserve
    kernel.shutdown();
  });
});
