/**
 * An Ethernet interface's device in the kernel: what the stack transmits
 * goes to the wire attached to it (a simulated link to another kernel, or
 * UDP datagrams to a real peer); what the wire brings waits in a bounded
 * receive queue for the stack's next poll. Until a wire is attached the
 * port has no carrier and drops what it is given.
 */
import type { Device, PacketBuffer } from '@moat/netstack';

/** Where frames go. */
export interface Wire {
  /** `frame` is lent for the call (it is a packet buffer, cleared and reused after): the wire copies what it keeps. */
  send(frame: Uint8Array, now: number): void;
  /** Sends what is due by `now` (latency, bandwidth); returns the next time something is due. */
  flush(now: number): number | undefined;
  stats(): Record<string, number>;
  close(): void;
}

/** Observes every frame that crosses the port, in either direction (a capture tap). */
export type Tap = (frame: Uint8Array, direction: 'tx' | 'rx') => void;

const RX_QUEUE_FRAMES = 1024;

export class EthernetPort implements Device {
  readonly medium = 'ethernet';
  wire: Wire | undefined;
  tap: Tap | undefined;
  readonly counters = { tx: 0, rx: 0, noCarrier: 0, rxQueueFull: 0 };
  private readonly rx: Uint8Array[] = [];

  /** `wake` asks the kernel for a poll when a frame arrives; `now` is the kernel's clock (virtual in lockstep). */
  constructor(
    readonly mtu: number,
    private readonly wake: () => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  transmit(frame: PacketBuffer): boolean {
    try {
      if (!this.wire) {
        this.counters.noCarrier++;
        return true; // as a NIC without carrier: accepted and lost
      }
      // No copy here: the wire makes the one it needs (a simulated link's model copies every delivery).
      this.tap?.(frame.bytes, 'tx');
      this.counters.tx++;
      this.wire.send(frame.bytes, this.now());
      return true;
    } finally {
      frame.release();
    }
  }

  receive(): PacketBuffer | undefined {
    const bytes = this.rx.shift();
    return bytes && { bytes, release() {} };
  }

  /** A frame from the wire (already the kernel's own copy). */
  deliver(bytes: Uint8Array): void {
    if (this.rx.length >= RX_QUEUE_FRAMES) {
      this.counters.rxQueueFull++;
      return;
    }
    this.tap?.(bytes, 'rx');
    this.counters.rx++;
    this.rx.push(bytes);
    this.wake();
  }
}
