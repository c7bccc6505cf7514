/**
 * Packet buffers are owned by whoever supplies the allocator (the kernel's
 * pool): the stack only borrows them and must release each exactly once.
 */
export interface PacketBuffer {
  /** Exactly the requested length. */
  readonly bytes: Uint8Array;
  /**
   * The rest of the packet, when it was gathered rather than copied in (a
   * device with `gather`: loopback): a view of a TCP segment's payload in its
   * connection's send buffer, whose bytes stay as they are until the segment
   * is acknowledged, and so until well after the packet is received. Not the
   * allocator's memory; `release` leaves it alone.
   */
  tail?: Uint8Array;
  release(): void;
}

/** Returns a buffer of `length` bytes, or null when the owner's share or the pool is exhausted. */
export type Allocate = (length: number) => PacketBuffer | null;

/** An allocator over plain memory, for tests and for stacks used outside a kernel. */
export const heapAllocate: Allocate = (length) => ({ bytes: new Uint8Array(length), release() {} });
