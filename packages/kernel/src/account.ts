/** What one domain holds in the kernel, against its limits (invariant 5). */

export interface Limits {
  /** Entries in the domain's handle table: beyond it, EMFILE. */
  maxHandles: number;
  /** Bytes of kernel buffers charged to the domain, packet buffers and stream buffers together: beyond it, ENOBUFS. */
  maxBufferBytes: number;
  /** Requests queued or blocked in the kernel: beyond it, EAGAIN. */
  maxPendingCalls: number;
  /**
   * Packet-buffer bytes the pool keeps for this domain alone (invariant 5's
   * reserved minimum): others exhausting the pool cannot take them.
   */
  reservedBufferBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxHandles: 64,
  maxBufferBytes: 4 << 20,
  maxPendingCalls: 256,
  reservedBufferBytes: 0,
};

export class Account {
  handles = 0;
  /** Entries it granted into others' tables, charged to it (HandleTable.insert). */
  grantedHandles = 0;
  sockets = 0;
  buffers = 0;
  bufferBytes = 0;
  /** What the domain's stream sockets hold (see Kernel.chargeStream). */
  streamBytes = 0;
  pendingCalls = 0;

  /** The pool holds this account's reservation (set by BufferPool.reserve). */
  reserving = false;

  constructor(readonly limits: Limits) {}

  /** Reserved bytes the domain has not used yet: the pool keeps them free for it. */
  get unusedReservation(): number {
    return this.reserving ? Math.max(0, this.limits.reservedBufferBytes - this.bufferBytes) : 0;
  }

  snapshot() {
    const { handles, grantedHandles, sockets, buffers, bufferBytes, streamBytes, pendingCalls } = this;
    return { handles, grantedHandles, sockets, buffers, bufferBytes, streamBytes, pendingCalls };
  }

  /** Handles charged to the domain: its own and those it granted. */
  get chargedHandles(): number {
    return this.handles + this.grantedHandles;
  }

  /** Buffer bytes the domain may still take. */
  get bufferRoom(): number {
    return this.limits.maxBufferBytes - this.bufferBytes - this.streamBytes;
  }

  /** True when nothing is held: what a dead domain must come back to. */
  get empty(): boolean {
    return this.handles === 0 && this.grantedHandles === 0 && this.sockets === 0 && this.buffers === 0 && this.bufferBytes === 0 && this.streamBytes === 0 && this.pendingCalls === 0;
  }
}
