/** A network device as the stack sees it: frames out, frames in, no host I/O of its own. */
import type { PacketBuffer } from './buffer.js';

export type Medium = 'ip' | 'ethernet';

export interface Device {
  readonly medium: Medium;
  readonly mtu: number;
  /**
   * The frames never leave this host (loopback): TCP and UDP checksums are
   * neither computed nor verified, as Linux's lo (CHECKSUM_PARTIAL out,
   * CHECKSUM_UNNECESSARY in). Bits cannot flip in memory the kernel owns.
   */
  readonly checksumOffload?: boolean;
  /**
   * Takes a packet whose payload is a view (PacketBuffer.tail) rather than
   * copied into its buffer, as Linux's lo takes scatter-gather skbs: the
   * packet is received from memory the kernel owns, so the payload's bytes
   * are copied once, into the receiving socket, instead of twice.
   */
  readonly gather?: boolean;
  /** Hands a frame to the device, which releases it when done. Returns false (and releases) when its queue is full. */
  transmit(frame: PacketBuffer): boolean;
  /** The next received frame, if any; the caller releases it. */
  receive(): PacketBuffer | undefined;
}

/**
 * Loopback: what is transmitted is received, in order, at the next poll.
 * Like Linux's lo it carries bare IP packets and has a 64 KiB MTU.
 */
export class LoopbackDevice implements Device {
  readonly medium = 'ip';
  /** Only with offloaded checksums: a payload left in place is not summed either. */
  readonly gather: boolean;
  private readonly queue: PacketBuffer[] = [];
  private head = 0;

  /** `checksumOffload` false: checksums computed and verified as on any link (to test the checks themselves). */
  constructor(
    readonly mtu = 65535,
    private readonly capacity = 4096,
    readonly checksumOffload = true,
  ) {
    this.gather = checksumOffload;
  }

  transmit(frame: PacketBuffer): boolean {
    if (this.queue.length - this.head >= this.capacity) {
      frame.release();
      return false;
    }
    this.queue.push(frame);
    return true;
  }

  receive(): PacketBuffer | undefined {
    if (this.head === this.queue.length) return undefined;
    const frame = this.queue[this.head];
    this.queue[this.head++] = undefined as never;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return frame;
  }

  get queued(): number {
    return this.queue.length - this.head;
  }
}
