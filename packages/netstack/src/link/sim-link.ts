/**
 * The fault model of one direction of a simulated Ethernet link, in the
 * manner of Linux netem and smoltcp's FaultInjector: sans-IO, so a frame and
 * the time go in and the frame's deliveries (when, and which bytes) come out;
 * whoever runs the simulation holds them until their time. Every random
 * choice comes from a generator seeded by the caller, so a seed and a
 * sequence of sends replay the same faults.
 */
import { ETHERNET_HEADER_LEN } from '../wire/ethernet.js';
import { Xoshiro128 } from './rng.js';

export interface LinkFaults {
  /** Largest Ethernet payload; longer frames are dropped as `tooBig`, as a NIC refuses them. */
  mtu: number;
  /** Fixed propagation delay added to every frame. */
  latencyMs: number;
  /** Extra delay drawn uniformly from [0, jitterMs) per delivery. Like netem's, it can reorder frames. */
  jitterMs: number;
  /** 0 = unlimited. Otherwise frames serialise one after another at this rate (frame bytes only, no preamble or gap). */
  bandwidthBitsPerSecond: number;
  /** Probability that a frame is lost in flight (it still occupied the wire). */
  loss: number;
  /** Probability that a frame that was not lost arrives twice. */
  duplicate: number;
  /** Probability that a delivery is held back by `reorderDelayMs`, so later frames overtake it. */
  reorder: number;
  reorderDelayMs: number;
  /** Probability that one random bit of a delivery is flipped. */
  corrupt: number;
  /** Windows [fromMs, toMs), relative to the link's start, in which every frame offered is dropped. */
  partitions: readonly { readonly fromMs: number; readonly toMs: number }[];
  /** Frames waiting for the wire beyond which new ones are tail-dropped (only a finite bandwidth makes frames wait). */
  queueLimitFrames: number;
}

/** A perfect 1500-byte link: no delay, no loss, unlimited bandwidth, Linux's default txqueuelen. */
export const DEFAULT_LINK_FAULTS: Readonly<LinkFaults> = Object.freeze({
  mtu: 1500,
  latencyMs: 0,
  jitterMs: 0,
  bandwidthBitsPerSecond: 0,
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderDelayMs: 0,
  corrupt: 0,
  partitions: Object.freeze([]),
  queueLimitFrames: 1000,
});

/** The smallest MTU every IPv4 host must handle (RFC 791), and the largest an IPv4 length can describe. */
const MIN_MTU = 68;
const MAX_MTU = 65535;

/**
 * Problems with a configuration, one human-readable line each naming the
 * field; empty when it is valid. Checks types too, since configurations come
 * from JSON scenario files.
 */
export function validateLinkFaults(f: LinkFaults): string[] {
  const problems: string[] = [];
  const isNumber = (name: string, v: unknown): v is number => {
    if (typeof v === 'number' && !Number.isNaN(v)) return true;
    problems.push(`${name} must be a number, got ${typeof v === 'number' ? v : JSON.stringify(v) ?? String(v)}`);
    return false;
  };
  const nonNegative = (name: keyof LinkFaults) => {
    const v = f[name];
    if (isNumber(name, v) && !(v >= 0 && Number.isFinite(v))) problems.push(`${name} must be a finite number >= 0, got ${v}`);
  };
  const probability = (name: keyof LinkFaults) => {
    const v = f[name];
    if (isNumber(name, v) && !(v >= 0 && v <= 1)) problems.push(`${name} must be between 0 and 1, got ${v}`);
  };

  if (isNumber('mtu', f.mtu) && !(Number.isInteger(f.mtu) && f.mtu >= MIN_MTU && f.mtu <= MAX_MTU)) {
    problems.push(`mtu must be an integer between ${MIN_MTU} and ${MAX_MTU}, got ${f.mtu}`);
  }
  nonNegative('latencyMs');
  nonNegative('jitterMs');
  nonNegative('bandwidthBitsPerSecond');
  probability('loss');
  probability('duplicate');
  probability('reorder');
  nonNegative('reorderDelayMs');
  probability('corrupt');
  if (!Array.isArray(f.partitions)) {
    problems.push(`partitions must be an array of { fromMs, toMs }, got ${JSON.stringify(f.partitions) ?? String(f.partitions)}`);
  } else {
    f.partitions.forEach((p, i) => {
      const name = `partitions[${i}]`;
      if (typeof p !== 'object' || p === null) return problems.push(`${name} must be { fromMs, toMs }, got ${JSON.stringify(p)}`);
      const fromOk = isNumber(`${name}.fromMs`, p.fromMs);
      const toOk = isNumber(`${name}.toMs`, p.toMs);
      if (fromOk && !(p.fromMs >= 0 && Number.isFinite(p.fromMs))) {
        problems.push(`${name}.fromMs must be a finite number >= 0, got ${p.fromMs}`);
      } else if (fromOk && toOk && !(p.toMs > p.fromMs)) {
        // toMs may be Infinity: a cut that never heals.
        problems.push(`${name}.toMs must be greater than fromMs (${p.fromMs}), got ${p.toMs}`);
      }
    });
  }
  if (isNumber('queueLimitFrames', f.queueLimitFrames) && !(Number.isInteger(f.queueLimitFrames) && f.queueLimitFrames >= 0)) {
    problems.push(`queueLimitFrames must be an integer >= 0, got ${f.queueLimitFrames}`);
  }
  return problems;
}

export interface SimLinkDelivery {
  /** When the frame arrives at the far end; never before it was sent. */
  at: number;
  /** A copy of its own: a corrupted one differs from what was sent by exactly one bit. */
  bytes: Uint8Array;
}

export interface SimLinkStats {
  /** Frames passed to send(). */
  offered: number;
  /** Deliveries returned, duplicates included. */
  delivered: number;
  lost: number;
  duplicated: number;
  /** Deliveries held back by reorderDelayMs. */
  reordered: number;
  /** Deliveries with a bit flipped. */
  corrupted: number;
  partitionDrops: number;
  tooBig: number;
  queueDrops: number;
  bytesOffered: number;
  bytesDelivered: number;
}

/** Draws per frame: loss, duplicate, then reorder, jitter, corrupt, corrupt-bit for each of the two copies. */
const DRAWS_PER_FRAME = 10;

export class SimLinkDirection {
  readonly faults: Readonly<LinkFaults>;
  private readonly rng: Xoshiro128;
  private readonly luck = new Float64Array(DRAWS_PER_FRAME);
  private readonly counts: SimLinkStats = {
    offered: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    corrupted: 0,
    partitionDrops: 0,
    tooBig: 0,
    queueDrops: 0,
    bytesOffered: 0,
    bytesDelivered: 0,
  };
  /** When the last accepted frame finishes serialising. */
  private wireFreeAt = -Infinity;
  /** Start times of accepted frames still waiting for the wire, oldest first. */
  private readonly waiting: number[] = [];
  private waitingHead = 0;
  private lastNow = -Infinity;

  /** Throws a RangeError listing every problem when `faults` is invalid. */
  constructor(
    faults: LinkFaults,
    seed: number,
    readonly startedAt: number,
  ) {
    const problems = validateLinkFaults(faults);
    if (problems.length > 0) throw new RangeError(`invalid link faults: ${problems.join('; ')}`);
    // A private copy, so a caller mutating its object cannot change a running link.
    this.faults = Object.freeze({ ...faults, partitions: Object.freeze(faults.partitions.map((p) => Object.freeze({ ...p }))) });
    this.rng = new Xoshiro128(seed);
  }

  get stats(): Readonly<SimLinkStats> {
    return { ...this.counts };
  }

  /** True when `now` falls in a partition window. */
  partitioned(now: number): boolean {
    const t = now - this.startedAt;
    return this.faults.partitions.some((p) => t >= p.fromMs && t < p.toMs);
  }

  /**
   * The deliveries of one frame: none when it is dropped, two when it is
   * duplicated. `frame` is only read. `now` must not go backwards, since the
   * wire's queue is reckoned from it.
   */
  send(frame: Uint8Array, now: number): SimLinkDelivery[] {
    if (!(now >= this.lastNow)) throw new RangeError(`time went backwards: ${now} after ${this.lastNow}`);
    this.lastNow = now;
    // The whole frame's luck is drawn before anything can drop it, so the
    // faults of frame N depend only on the seed and N: changing the partitions
    // or the MTU of a scenario does not reshuffle the faults of every later frame.
    for (let i = 0; i < DRAWS_PER_FRAME; i++) this.luck[i] = this.rng.nextFloat();
    const f = this.faults;
    const c = this.counts;
    c.offered++;
    c.bytesOffered += frame.length;

    if (frame.length > f.mtu + ETHERNET_HEADER_LEN) {
      c.tooBig++;
      return [];
    }
    if (this.partitioned(now)) {
      c.partitionDrops++;
      return [];
    }

    let leftWireAt = now;
    if (f.bandwidthBitsPerSecond > 0) {
      this.retire(now);
      const start = Math.max(now, this.wireFreeAt);
      // A frame that finds the wire idle never waits, so even a limit of 0 lets it through.
      if (start > now) {
        if (this.waiting.length - this.waitingHead >= f.queueLimitFrames) {
          c.queueDrops++;
          return [];
        }
        this.waiting.push(start);
      }
      this.wireFreeAt = leftWireAt = start + (frame.length * 8 * 1000) / f.bandwidthBitsPerSecond;
    }

    // Lost in flight, after occupying the wire, as on a real cable.
    if (this.luck[0]! < f.loss) {
      c.lost++;
      return [];
    }
    const deliveries = [this.deliver(frame, leftWireAt, 2)];
    if (this.luck[1]! < f.duplicate) {
      c.duplicated++;
      deliveries.push(this.deliver(frame, leftWireAt, 6));
    }
    return deliveries;
  }

  /** One copy of `frame`, using four draws of this frame's luck from index `i`. */
  private deliver(frame: Uint8Array, leftWireAt: number, i: number): SimLinkDelivery {
    const f = this.faults;
    const c = this.counts;
    const luck = this.luck;
    let at = leftWireAt + f.latencyMs + luck[i + 1]! * f.jitterMs;
    if (luck[i]! < f.reorder) {
      at += f.reorderDelayMs;
      c.reordered++;
    }
    const bytes = frame.slice();
    if (luck[i + 2]! < f.corrupt && bytes.length > 0) {
      const bit = Math.floor(luck[i + 3]! * bytes.length * 8);
      bytes[bit >> 3] ^= 0x80 >> (bit & 7);
      c.corrupted++;
    }
    c.delivered++;
    c.bytesDelivered += bytes.length;
    return { at, bytes };
  }

  /** Forgets frames whose serialisation has started by `now`: they no longer wait. */
  private retire(now: number): void {
    while (this.waitingHead < this.waiting.length && this.waiting[this.waitingHead]! <= now) this.waitingHead++;
    if (this.waitingHead === this.waiting.length) {
      this.waiting.length = 0;
      this.waitingHead = 0;
    } else if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
  }
}
