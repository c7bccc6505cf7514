/**
 * One end of a simulated link between two kernels: frames cross a
 * MessagePort, after this end's fault model (loss, duplication, reordering,
 * corruption, latency, bandwidth, partitions, seeded) has had its way with
 * them. Each direction is modelled by its sender. The frames due at one
 * flush cross as one message (an array of frames, their buffers
 * transferred): a message costs the sender and the receiver several
 * microseconds, as much as copying a few frames.
 */
import type { MessagePort } from 'node:worker_threads';
import { SimLinkDirection, type LinkFaults } from '@moat/netstack';
import type { EthernetPort, Wire } from './ethernet-port.js';

export class SimWire implements Wire {
  private readonly model: SimLinkDirection;
  /** Deliveries waiting for their time, in order of time. */
  private readonly pending: { at: number; bytes: Uint8Array }[] = [];
  private malformed = 0;

  constructor(
    private readonly port: MessagePort,
    faults: LinkFaults,
    seed: number,
    startedAt: number,
    receiver: EthernetPort,
  ) {
    this.model = new SimLinkDirection(faults, seed, startedAt);
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

  send(frame: Uint8Array, now: number): void {
    for (const d of this.model.send(frame, now)) {
      let i = this.pending.length;
      while (i > 0 && this.pending[i - 1]!.at > d.at) i--;
      this.pending.splice(i, 0, d);
    }
    // Not flushed here: the kernel flushes every wire after each poll of the stack, so a poll's frames go as one message.
  }

  flush(now: number): number | undefined {
    let due = 0;
    while (due < this.pending.length && this.pending[due]!.at <= now) due++;
    if (due > 0) {
      const frames = this.pending.splice(0, due).map(({ bytes }) => (bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()));
      this.port.postMessage(frames, frames.map((f) => f.buffer as ArrayBuffer));
    }
    return this.pending[0]?.at;
  }

  stats(): Record<string, number> {
    return { ...this.model.stats, inFlight: this.pending.length, malformedFromPeer: this.malformed };
  }

  close(): void {
    this.port.close();
  }
}
