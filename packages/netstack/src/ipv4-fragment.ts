/**
 * IPv4 fragmentation (RFC 791) and reassembly (RFC 815's "hole" idea, kept
 * simpler: overlaps are refused, so a datagram is whole exactly when the bytes
 * held reach the length the last fragment announced).
 *
 * Reassembly is where a stack spends memory on behalf of whoever sends it
 * fragments, so every resource is bounded and every refusal is counted under
 * 'drop.frag.<reason>'. Sans-IO: time comes in as `now`, expiry goes out
 * through `poll`.
 */
import type { Counters } from './counters.js';
import type { Ipv4Address } from './wire/address.js';
import { IPV4_HEADER_LEN, type Ipv4Packet } from './wire/ipv4.js';
import { earlier } from './deadline.js';

/** RFC 791: every module must forward a 68-byte datagram without fragmenting it further. */
export const IPV4_MIN_MTU = 68;
/** Largest payload an IPv4 datagram can carry: total length is 16 bits, the header at least 20. */
export const IPV4_MAX_PAYLOAD = 65535 - IPV4_HEADER_LEN;

export interface FragmentPlan {
  /** Offset of this fragment's data in the payload, in bytes (a multiple of 8). */
  offset: number;
  length: number;
  /** The MF flag: false only on the last fragment. */
  more: boolean;
}

/**
 * Splits `payloadLength` bytes of IPv4 payload into fragments that fit `mtu`
 * with a 20-byte header (no options). Every fragment but the last carries a
 * multiple of 8 bytes, because the offset field counts 8-byte units. A
 * payload that fits needs no fragmentation and comes back as one piece.
 * Bad arguments are the caller's bug (this plans our own output), so they throw.
 */
export function planFragments(payloadLength: number, mtu: number): FragmentPlan[] {
  if (!Number.isInteger(mtu) || mtu < IPV4_MIN_MTU) throw new RangeError(`MTU ${mtu} is below IPv4's minimum of ${IPV4_MIN_MTU}`);
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || payloadLength > IPV4_MAX_PAYLOAD) {
    throw new RangeError(`an IPv4 payload of ${payloadLength} bytes is impossible`);
  }
  const room = Math.min(mtu, 65535) - IPV4_HEADER_LEN;
  if (payloadLength <= room) return [{ offset: 0, length: payloadLength, more: false }];
  const step = room & ~7; // at least 48 since mtu >= 68
  const plan: FragmentPlan[] = [];
  for (let offset = 0; offset < payloadLength; offset += step) {
    const length = Math.min(step, payloadLength - offset);
    plan.push({ offset, length, more: offset + length < payloadLength });
  }
  return plan;
}

export interface ReassemblyLimits {
  /** Payload bytes held across all incomplete datagrams. */
  maxBytes: number;
  maxDatagrams: number;
  maxFragmentsPerDatagram: number;
  /** From a datagram's first fragment to be (never extended by later ones, so a trickle cannot keep it alive). */
  timeoutMs: number;
}

/** Linux's defaults in spirit: ipfrag_time is 30 s; memory is smaller, for a model OS. */
export const DEFAULT_REASSEMBLY_LIMITS: Readonly<ReassemblyLimits> = Object.freeze({
  maxBytes: 256 * 1024,
  maxDatagrams: 64,
  maxFragmentsPerDatagram: 64,
  timeoutMs: 30_000,
});

export interface ExpiredDatagram {
  src: Ipv4Address;
  dst: Ipv4Address;
  protocol: number;
  identification: number;
  /**
   * The first fragment's IP header and first 8 payload bytes, if it arrived:
   * what RFC 792's time exceeded (code 1, reassembly) must quote. RFC 1122
   * 3.3.2 sends that message only when the first fragment arrived.
   */
  firstFragment: Uint8Array | undefined;
}

export interface ReassemblyPoll {
  /** When `poll` must run again, or undefined when nothing is held. */
  readonly deadline: number | undefined;
  readonly expired: readonly ExpiredDatagram[];
}

const NOTHING_TO_REASSEMBLE: ReassemblyPoll = Object.freeze({ deadline: undefined, expired: Object.freeze([]) });

interface Fragment {
  offset: number;
  data: Uint8Array;
}

interface Datagram {
  src: Ipv4Address;
  dst: Ipv4Address;
  protocol: number;
  identification: number;
  deadline: number;
  /** Sorted by offset, never overlapping. */
  fragments: Fragment[];
  bytes: number;
  /** Payload length, known once the last fragment (MF clear) arrived. */
  total: number | undefined;
  /** Bytes just past the highest fragment seen: a last fragment may not end before it. */
  highest: number;
  firstFragment: Uint8Array | undefined;
}

export class Reassembler {
  // Map keeps insertion order, which is also arrival order of first fragments:
  // the front is the oldest datagram and, with a monotonic clock, the first to expire.
  private readonly datagrams = new Map<string, Datagram>();
  /** Datagrams that accept() found expired, reported by the next poll(). */
  private readonly timedOut: ExpiredDatagram[] = [];
  private held = 0;
  private readonly limits: ReassemblyLimits;

  /** Limits not given (`{}` for all) take DEFAULT_REASSEMBLY_LIMITS. A limit that is not positive is a configuration bug and throws. */
  constructor(
    limits: Partial<ReassemblyLimits>,
    private readonly counters: Counters,
  ) {
    this.limits = { ...DEFAULT_REASSEMBLY_LIMITS, ...limits };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!(value > 0)) throw new RangeError(`reassembly limit ${name} must be positive, not ${value}`);
    }
  }

  /** Payload bytes held in incomplete datagrams (never more than maxBytes). */
  get bytesHeld(): number {
    return this.held;
  }

  get datagramsHeld(): number {
    return this.datagrams.size;
  }

  /**
   * Takes one fragment (`p` parsed from `raw`, the whole IPv4 packet, which
   * is needed only to keep the first fragment's header for ICMP). Copies what
   * it keeps, so the caller may release `raw` at once. Returns the whole
   * payload, a fresh array the caller owns, when this fragment completes the
   * datagram; undefined otherwise (held, or dropped and counted).
   *
   * Fragments that are bad on their own (empty, misaligned, past 65535) are
   * dropped alone; a fragment that contradicts what is held (overlap,
   * conflicting end) drops the whole datagram, since either may be the liar.
   */
  accept(p: Ipv4Packet, raw: Uint8Array, now: number): Uint8Array | undefined {
    const length = p.payload.length;
    const end = p.fragmentOffset + length;
    if (!p.moreFragments && p.fragmentOffset === 0) return this.drop('notFragment');
    if (length === 0) return this.drop('empty');
    if (p.moreFragments && length % 8 !== 0) return this.drop('misaligned');
    // The ping of death: offset + length past what a datagram can hold.
    if (end > IPV4_MAX_PAYLOAD) return this.drop('tooBig');
    if (length > this.limits.maxBytes) return this.drop('limitBytes');

    this.expireOldest(now);
    const key = `${p.src}/${p.dst}/${p.protocol}/${p.identification}`;
    let d = this.datagrams.get(key);

    if (d) {
      // A last fragment fixes the length; everything must agree with it.
      const conflicts = p.moreFragments
        ? d.total !== undefined && end >= d.total
        : (d.total !== undefined && end !== d.total) || end < d.highest;
      if (conflicts) return this.discard(key, d, 'inconsistent');
      const at = d.fragments.findIndex((f) => f.offset + f.data.length > p.fragmentOffset);
      const next = at === -1 ? undefined : d.fragments[at]!;
      if (next && next.offset < end) {
        if (next.offset === p.fragmentOffset && sameBytes(next.data, p.payload)) {
          this.counters.add('frag.duplicate');
          return undefined;
        }
        // Teardrop and friends: overlapping fragments are never merged (as RFC 5722 rules for IPv6).
        return this.discard(key, d, 'overlap');
      }
      if (d.fragments.length >= this.limits.maxFragmentsPerDatagram) {
        // Nothing more may join it, so it can never complete: free its memory now rather than at timeout.
        return this.discard(key, d, 'limitFragments');
      }
      // Its final length is at least this, more than may ever be held: it can never complete.
      if (d.bytes + length > this.limits.maxBytes) return this.discard(key, d, 'limitBytes');
      this.makeRoom(length, d);
      d.fragments.splice(at === -1 ? d.fragments.length : at, 0, { offset: p.fragmentOffset, data: p.payload.slice() });
    } else {
      if (this.datagrams.size >= this.limits.maxDatagrams) this.evictOldest('limitDatagrams');
      this.makeRoom(length, undefined);
      d = {
        src: p.src,
        dst: p.dst,
        protocol: p.protocol,
        identification: p.identification,
        deadline: now + this.limits.timeoutMs,
        fragments: [{ offset: p.fragmentOffset, data: p.payload.slice() }],
        bytes: 0,
        total: undefined,
        highest: 0,
        firstFragment: undefined,
      };
      this.datagrams.set(key, d);
    }

    d.bytes += length;
    this.held += length;
    d.highest = Math.max(d.highest, end);
    if (!p.moreFragments) d.total = end;
    if (p.fragmentOffset === 0) {
      // Header and 8 bytes of data (a first fragment has MF set, so it carries at least 8), not link padding.
      d.firstFragment = raw.slice(0, Math.min(raw.length, p.headerLength + 8));
    }
    // No overlaps are held, so holding `total` bytes means every hole is filled.
    if (d.total === undefined || d.bytes !== d.total) return undefined;
    const whole = new Uint8Array(d.total);
    for (const f of d.fragments) whole.set(f.data, f.offset);
    this.remove(key, d);
    this.counters.add('frag.reassembled');
    return whole;
  }

  /**
   * Drops datagrams whose time is up (counting frag.lost.timeout) and reports
   * them, so the caller can send ICMP time exceeded where firstFragment is set.
   */
  poll(now: number): ReassemblyPoll {
    // Nothing held, nothing timed out (every poll but a fragmenting link's): no answer made.
    if (this.datagrams.size === 0 && this.timedOut.length === 0) return NOTHING_TO_REASSEMBLE;
    const expired = this.timedOut.splice(0);
    let deadline: number | undefined;
    // A full scan rather than the front only: correct even if `now` ever steps back. At most maxDatagrams.
    for (const [key, d] of this.datagrams) {
      if (now >= d.deadline) expired.push(this.expire(key, d));
      else deadline = earlier(deadline, d.deadline);
    }
    return { deadline, expired };
  }

  /**
   * Counting: `drop.frag.<reason>` once per fragment refused by accept() (so
   * every frame the stack receives ends in exactly one counter), and
   * `frag.lost.<reason>` once per datagram whose held fragments are thrown
   * away (a conflict, an eviction, a timeout).
   */
  private drop(reason: string): undefined {
    this.counters.add(`drop.frag.${reason}`);
    return undefined;
  }

  /** Refuses the fragment at hand and throws away the datagram it conflicts with. */
  private discard(key: string, d: Datagram, reason: string): undefined {
    this.lose(key, d, reason);
    return this.drop(reason);
  }

  private lose(key: string, d: Datagram, reason: string): void {
    this.remove(key, d);
    this.counters.add(`frag.lost.${reason}`);
  }

  private remove(key: string, d: Datagram): void {
    this.datagrams.delete(key);
    this.held -= d.bytes;
  }

  private expire(key: string, d: Datagram): ExpiredDatagram {
    this.lose(key, d, 'timeout');
    const { src, dst, protocol, identification, firstFragment } = d;
    return { src, dst, protocol, identification, firstFragment };
  }

  /**
   * Times out datagrams at the front so a late fragment never completes a
   * datagram past its deadline even when the caller polls late. The reports
   * wait for poll(), bounded so a caller that never polls cannot grow them.
   */
  private expireOldest(now: number): void {
    for (const [key, d] of this.datagrams) {
      if (now < d.deadline) return;
      this.timedOut.push(this.expire(key, d));
      if (this.timedOut.length > this.limits.maxDatagrams) this.timedOut.shift();
    }
  }

  /**
   * Makes room for `length` more bytes by evicting the oldest datagrams
   * (never `keep`, the one the bytes are for).
   *
   * Why evict the oldest rather than refuse the newcomer: with refusal, a
   * flood only has to fill maxBytes once per timeout (256 KiB per 30 s is
   * about 9 KB/s) to lock every new datagram out for as long as it lasts, and
   * 30 s beyond. With eviction, to kill a legitimate datagram the flood must
   * push maxBytes through in the short time between that datagram's first
   * and last fragment (they travel back to back, so milliseconds: hundreds of
   * MB/s), and service returns the moment the flood stops. The cost is that
   * a slow legitimate datagram can lose to a fast flood; it would have lost
   * under refusal as well, since it could not have started.
   */
  private makeRoom(length: number, keep: Datagram | undefined): void {
    while (this.held + length > this.limits.maxBytes) {
      if (!this.evictOldest('limitBytes', keep)) return;
    }
  }

  private evictOldest(reason: string, keep?: Datagram): boolean {
    for (const [key, d] of this.datagrams) {
      if (d === keep) continue;
      this.lose(key, d, reason);
      return true;
    }
    return false;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
