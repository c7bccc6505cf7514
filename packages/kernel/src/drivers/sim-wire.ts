/**
 * One end of a simulated link between two kernels: frames cross a
 * MessagePort, after this end's fault model (loss, duplication, reordering,
 * corruption, latency, bandwidth, partitions, seeded) has had its way with
 * them. Each direction is modelled by its sender.
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
    port.on('message', (bytes: unknown) => {
      // The peer is another kernel, but a wire carries bytes and nothing else.
      if (bytes instanceof Uint8Array) receiver.deliver(bytes);
      else this.malformed++;
    });
  }

  send(frame: Uint8Array, now: number): void {
    for (const d of this.model.send(frame, now)) {
      let i = this.pending.length;
      while (i > 0 && this.pending[i - 1]!.at > d.at) i--;
      this.pending.splice(i, 0, d);
    }
    this.flush(now);
  }

  flush(now: number): number | undefined {
    while (this.pending.length > 0 && this.pending[0]!.at <= now) {
      const { bytes } = this.pending.shift()!;
      const exact = bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      this.port.postMessage(exact, [exact.buffer as ArrayBuffer]);
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
