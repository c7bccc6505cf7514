/**
 * Several machines joined by links. Each kernel applies its direction's
 * fault model, seeded from the network's seed, so the same seed gives the
 * same faults for the same traffic. A link joins two Ethernet interfaces
 * through a MessageChannel between their kernels' workers; in lockstep every
 * machine's kernel is in one worker under one virtual clock, and a link
 * hands frames from one kernel to the other inside it.
 */
import { MessageChannel } from 'node:worker_threads';
import { DEFAULT_LINK_FAULTS, validateLinkFaults, type LinkFaults } from '@moat/netstack';
import { Machine, type MachineOptions } from './machine.js';

export interface LinkEnd {
  machine: Machine;
  iface: string;
}

export class Network {
  readonly machines: Machine[] = [];
  private links = 0;

  constructor(readonly seed = 1) {}

  machine(options: MachineOptions): Machine {
    const first = this.machines[0];
    if (first && !!options.lockstep !== this.lockstep) throw new Error(`machine ${options.name ?? 'machine'}: a network's machines are all lockstep or none`);
    // Lockstep: every machine joins the first one's worker, so that one conductor runs them all.
    const m = new Machine(options, options.lockstep ? first : undefined);
    this.lockstep = !!options.lockstep;
    this.machines.push(m);
    return m;
  }

  private lockstep = false;

  /**
   * Joins two interfaces by a simulated link; `faults` apply to both
   * directions (each with its own seeded generator). Throws an error naming
   * the field when a fault setting is out of range.
   */
  async link(a: LinkEnd, b: LinkEnd, faults: Partial<LinkFaults> = {}): Promise<void> {
    const full: LinkFaults = { ...DEFAULT_LINK_FAULTS, ...faults };
    const problems = validateLinkFaults(full);
    if (problems.length > 0) throw new Error(`link ${a.machine.name}.${a.iface} - ${b.machine.name}.${b.iface}: ${problems.join('; ')}`);
    const index = this.links++;
    if (this.lockstep) return a.machine.linkInWorker(a.iface, b.machine, b.iface, full, [mix(this.seed, index, 0), mix(this.seed, index, 1)]);
    const { port1, port2 } = new MessageChannel();
    await Promise.all([
      a.machine.wire(a.iface, { kind: 'sim', port: port1, faults: full, seed: mix(this.seed, index, 0) }),
      b.machine.wire(b.iface, { kind: 'sim', port: port2, faults: full, seed: mix(this.seed, index, 1) }),
    ]);
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.machines.map((m) => m.shutdown()));
  }
}

/** A distinct 32-bit seed per link direction, derived from the network's seed. */
function mix(seed: number, link: number, direction: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [link, direction]) {
    h = Math.imul(h ^ v, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h;
}
