/**
 * Kernel packet buffers. Memory comes in a few size classes and is reused
 * through free lists; every buffer is charged to the account of the domain
 * it serves, and cleared when released so no domain ever sees bytes left by
 * another (invariant 4).
 */
import type { PacketBuffer } from '@moat/netstack';
import type { Account } from './account.js';

const SIZE_CLASSES = [256, 2048, 4096, 8192, 16384, 32768, 65536];
/** Free blocks kept per class; beyond it released memory goes back to the JS heap. */
const FREE_LIST_MAX = 256;

export interface PoolStats {
  capacityBytes: number;
  inUseBytes: number;
  inUseBuffers: number;
  allocations: number;
  failures: number;
  /** Free bytes held back for domains' reservations. */
  reservedBytes: number;
  /** Allocations refused on purpose (failAllocations), counted in `failures` too. */
  injectedFailures: number;
}

/** Allocation failures to inject: the `count` allocations from the `at`th asked for on (1 = the next). */
export interface AllocationFault {
  at: number;
  count: number;
}

export class BufferPool {
  private readonly free: Uint8Array[][] = SIZE_CLASSES.map(() => []);
  private inUseBytes = 0;
  private inUseBuffers = 0;
  private allocations = 0;
  private failures = 0;
  /** The sum of every reserving account's unused reservation: free memory only they may take. */
  private reservedUnused = 0;
  /** Allocation attempts so far, successful or not: what an AllocationFault counts in. */
  private attempts = 0;
  private injected = 0;
  private faults: { from: number; to: number }[] = [];

  constructor(readonly capacityBytes = 64 << 20) {}

  /**
   * Sets aside `account`'s reservedBufferBytes for it alone. False when the
   * pool cannot promise that much beside the reservations it already holds.
   */
  reserve(account: Account): boolean {
    const want = account.limits.reservedBufferBytes;
    if (account.reserving || want <= 0) return true;
    if (want > account.limits.maxBufferBytes || this.inUseBytes + this.reservedUnused + want > this.capacityBytes) return false;
    account.reserving = true;
    this.reservedUnused += account.unusedReservation;
    return true;
  }

  /** Gives an account's reservation back (its domain is gone). */
  unreserve(account: Account): void {
    if (!account.reserving) return;
    this.reservedUnused -= account.unusedReservation;
    account.reserving = false;
  }

  /**
   * Makes allocations fail on purpose, as an exhausted pool would: the fault
   * campaigns' way of driving every caller down its failure path, which must
   * give back whatever it took before.
   */
  failAllocations(fault: AllocationFault): void {
    if (!(Number.isSafeInteger(fault.at) && fault.at >= 1 && Number.isSafeInteger(fault.count) && fault.count >= 1)) {
      throw new Error(`allocation fault: at and count must be integers >= 1, got ${JSON.stringify(fault)}`);
    }
    const from = this.attempts + fault.at;
    this.faults.push({ from, to: from + fault.count - 1 });
  }

  /** A buffer of exactly `length` bytes charged to `account`, or null (ENOBUFS). */
  allocate(length: number, account: Account): PacketBuffer | null {
    const attempt = ++this.attempts;
    if (this.faults.length > 0 && this.faults.some((f) => attempt >= f.from && attempt <= f.to)) {
      this.faults = this.faults.filter((f) => attempt < f.to);
      this.injected++;
      this.failures++;
      return null;
    }
    const cls = classOf(length);
    const size = SIZE_CLASSES[cls];
    // Others' unused reservations are not free to this account; its own are.
    const ownUnused = account.unusedReservation;
    if (
      size === undefined ||
      account.bufferBytes + size > account.limits.maxBufferBytes ||
      this.inUseBytes + size + this.reservedUnused - ownUnused > this.capacityBytes
    ) {
      this.failures++;
      return null;
    }
    const block = this.free[cls]!.pop() ?? new Uint8Array(size);
    this.inUseBytes += size;
    this.inUseBuffers++;
    this.allocations++;
    account.buffers++;
    account.bufferBytes += size;
    this.reservedUnused += account.unusedReservation - ownUnused;
    return new PooledBuffer(this, block.subarray(0, length), block, cls, account);
  }

  /** Takes back a released buffer (PooledBuffer.release, which cleared it). */
  reclaim(b: PooledBuffer): void {
    const size = SIZE_CLASSES[b.cls]!;
    const account = b.account;
    this.inUseBytes -= size;
    this.inUseBuffers--;
    const before = account.unusedReservation;
    account.buffers--;
    account.bufferBytes -= size;
    this.reservedUnused += account.unusedReservation - before;
    const free = this.free[b.cls]!;
    if (free.length < FREE_LIST_MAX) free.push(b.block);
  }

  /** Bytes a buffer of `length` would be charged (its size class), or Infinity if none fits. */
  chargeFor(length: number): number {
    return SIZE_CLASSES[classOf(length)] ?? Infinity;
  }

  stats(): PoolStats {
    const { capacityBytes, inUseBytes, inUseBuffers, allocations, failures, reservedUnused, injected } = this;
    return { capacityBytes, inUseBytes, inUseBuffers, allocations, failures, reservedBytes: reservedUnused, injectedFailures: injected };
  }
}

/** The smallest size class that holds `length` bytes (SIZE_CLASSES.length when none does). */
function classOf(length: number): number {
  let cls = 0;
  while (cls < SIZE_CLASSES.length && SIZE_CLASSES[cls]! < length) cls++;
  return cls;
}

/**
 * One allocation: an object of one shape per packet rather than a closure
 * and its context (packet buffers are taken and given back on every segment).
 */
class PooledBuffer implements PacketBuffer {
  /** Set by the stack on a gathered packet: not pool memory, and not cleared here (see PacketBuffer.tail). */
  tail: Uint8Array | undefined = undefined;
  private released = false;

  constructor(
    private readonly pool: BufferPool,
    readonly bytes: Uint8Array,
    readonly block: Uint8Array,
    readonly cls: number,
    readonly account: Account,
  ) {}

  release(): void {
    if (this.released) throw new Error('kernel bug: packet buffer released twice');
    this.released = true;
    this.tail = undefined;
    this.bytes.fill(0);
    this.pool.reclaim(this);
  }
}
