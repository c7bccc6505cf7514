/**
 * Packet buffers are owned by whoever supplies the allocator (the kernel's
 * pool): the stack only borrows them and must release each exactly once.
 */
export interface PacketBuffer {
  /** Exactly the requested length. */
  readonly bytes: Uint8Array;
  release(): void;
}

/** Returns a buffer of `length` bytes, or null when the owner's share or the pool is exhausted. */
export type Allocate = (length: number) => PacketBuffer | null;

/** An allocator over plain memory, for tests and for stacks used outside a kernel. */
export const heapAllocate: Allocate = (length) => ({ bytes: new Uint8Array(length), release() {} });
