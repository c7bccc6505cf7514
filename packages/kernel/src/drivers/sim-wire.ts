/**
 * One end of a simulated link between two kernels. This end's fault model
 * (loss, duplication, reordering, corruption, latency, bandwidth,
 * partitions, seeded) has its way with every frame sent; each direction is
 * modelled by its sender. What is due at a flush crosses to the peer:
 *
 * - `SimWire`, between kernels of two workers: over a MessagePort, the
 *   frames due at one flush as one message (an array of frames, their
 *   buffers transferred), since a message costs the sender and the receiver
 *   several microseconds, as much as copying a few frames;
 * - `LocalWire`, between kernels of one worker (lockstep): handed to the
 *   peer's port at once, at the point of the conductor's loop where this
 *   end's kernel flushes, so a replay delivers them at the same point.
 */
import type { MessagePort } from 'node:worker_threads';
import { SimLinkDirection, type LinkFaults } from '@moat/netstack';
import type { EthernetPort, Wire } from './ethernet-port.js';

abstract class ModelledWire implements Wire {
  private readonly model: SimLinkDirection;
  /** Deliveries waiting for their time, in order of time. */
  private readonly pending: { at: number; bytes: Uint8Array }[] = [];
  protected malformed = 0;

  constructor(faults: LinkFaults, seed: number, startedAt: number) {
    this.model = new SimLinkDirection(faults, seed, startedAt);
  }

  /** Hands the frames due at a flush (each its own copy: the model copies every delivery) to the peer. */
  protected abstract carry(frames: Uint8Array[]): void;

  send(frame: Uint8Array, now: number): void {
    for (const d of this.model.send(frame, now)) {
      let i = this.pending.length;
      while (i > 0 && this.pending[i - 1]!.at > d.at) i--;
      this.pending.splice(i, 0, d);
    }
    // Not flushed here: the kernel flushes every wire after each poll of the stack, so a poll's frames go together.
  }

  flush(now: number): number | undefined {
    let due = 0;
    while (due < this.pending.length && this.pending[due]!.at <= now) due++;
    if (due > 0) this.carry(this.pending.splice(0, due).map(({ bytes }) => bytes));
    return this.pending[0]?.at;
  }

  stats(): Record<string, number> {
    return { ...this.model.stats, inFlight: this.pending.length, malformedFromPeer: this.malformed };
  }

  abstract close(): void;
}

export class SimWire extends ModelledWire {
  constructor(
    private readonly port: MessagePort,
    faults: LinkFaults,
    seed: number,
    startedAt: number,
    receiver: EthernetPort,
  ) {
    super(faults, seed, startedAt);
    port.on('message', (message: unknown) => {
      // The peer is another kernel, but a wire carries bytes and nothing else.
      if (message instanceof Uint8Array) return receiver.deliver(message);
      if (!Array.isArray(message)) return void this.malformed++;
      for (const bytes of message as unknown[]) {
        if (bytes instanceof Uint8Array) receiver.deliver(bytes);
        else this.malformed++;
      }
    });
  }

  protected carry(frames: Uint8Array[]): void {
    // A view into a larger buffer would transfer (and detach) all of it.
    const own = frames.map((bytes) => (bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()));
    this.port.postMessage(own, own.map((f) => f.buffer as ArrayBuffer));
  }

  close(): void {
    this.port.close();
  }
}

export class LocalWire extends ModelledWire {
  private closed = false;

  constructor(
    faults: LinkFaults,
    seed: number,
    startedAt: number,
    private readonly peer: EthernetPort,
  ) {
    super(faults, seed, startedAt);
  }

  protected carry(frames: Uint8Array[]): void {
    if (this.closed) return;
    for (const bytes of frames) this.peer.deliver(bytes);
  }

  close(): void {
    this.closed = true;
  }
}
