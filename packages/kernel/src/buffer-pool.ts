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
}

export class BufferPool {
  private readonly free: Uint8Array[][] = SIZE_CLASSES.map(() => []);
  private inUseBytes = 0;
  private inUseBuffers = 0;
  private allocations = 0;
  private failures = 0;

  constructor(readonly capacityBytes = 64 << 20) {}

  /** A buffer of exactly `length` bytes charged to `account`, or null (ENOBUFS). */
  allocate(length: number, account: Account): PacketBuffer | null {
    const cls = SIZE_CLASSES.findIndex((size) => size >= length);
    const size = SIZE_CLASSES[cls];
    if (
      size === undefined ||
      account.bufferBytes + size > account.limits.maxBufferBytes ||
      this.inUseBytes + size > this.capacityBytes
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
    const bytes = block.subarray(0, length);
    let released = false;
    return {
      bytes,
      release: () => {
        if (released) throw new Error('kernel bug: packet buffer released twice');
        released = true;
        bytes.fill(0);
        this.inUseBytes -= size;
        this.inUseBuffers--;
        account.buffers--;
        account.bufferBytes -= size;
        if (this.free[cls]!.length < FREE_LIST_MAX) this.free[cls]!.push(block);
      },
    };
  }

  /** Bytes a buffer of `length` would be charged (its size class), or Infinity if none fits. */
  chargeFor(length: number): number {
    return SIZE_CLASSES.find((size) => size >= length) ?? Infinity;
  }

  stats(): PoolStats {
    const { capacityBytes, inUseBytes, inUseBuffers, allocations, failures } = this;
    return { capacityBytes, inUseBytes, inUseBuffers, allocations, failures };
  }
}
