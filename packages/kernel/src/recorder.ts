/**
 * The kernel's event recorder: what each domain asked and got, each TCP
 * connection's control transitions, domains coming and going and, when
 * asked, the frames that cross the interfaces. The host turns it into a
 * report's timeline (`@moat/sim`'s `Timeline` has the same event shape).
 *
 * It sits on the syscall path, so recording a call allocates nothing: the
 * common fields live in columns (typed arrays that grow by doubling up to
 * the bound, and arrays of strings the kernel already holds: domain and
 * syscall names), and events become objects
 * only when the host asks for them. Memory is bounded: past `capacity`
 * events it only counts what it drops. The last 1% of the slots is kept
 * for lifecycle events, so a crash at the end of a run that filled the
 * recorder still shows.
 */
import { errnoName } from '@moat/abi';
import { formatIpv4Address } from '@moat/netstack';

export type RecordedKind = 'syscall' | 'packet' | 'transition' | 'lifecycle' | 'log';
export type EventArgs = Record<string, string | number | boolean>;

/** One event, in the shape of `@moat/sim`'s TimelineEvent. */
export interface RecordedEvent {
  /** Microseconds since the kernel started. */
  ts: number;
  /** Microseconds (syscalls: from when the kernel took the request up to its reply). */
  dur?: number;
  /** A domain's name, or `kernel:<machine>`. */
  track: string;
  kind: RecordedKind;
  name: string;
  args?: EventArgs;
}

export interface RecordedTimeline {
  events: RecordedEvent[];
  /** Events left out because the bound was reached. */
  dropped: number;
}

export interface RecorderOptions {
  /** Most events kept (default 100,000). */
  capacity?: number;
  /** The kernel's clock, in milliseconds. */
  now: () => number;
}

export const DEFAULT_TRACE_EVENTS = 100_000;

const SYSCALL = 0;
const PACKET = 1;
const TRANSITION = 2;
const LIFECYCLE = 3;
const LOG = 4;
/** A logged line longer than this is cut: the trace is bounded by events, and a line could be any length. */
const LOG_LINE_CHARS = 200;
const KINDS: readonly RecordedKind[] = ['syscall', 'packet', 'transition', 'lifecycle', 'log'];

/** Where a packet was seen. */
export type PacketDirection = 'tx' | 'rx' | 'lo';
const DIRECTIONS: readonly PacketDirection[] = ['tx', 'rx', 'lo'];
/** Enough of a frame for its Ethernet, IPv4 (with options) and TCP headers: all a summary reads. */
const PACKET_HEAD_BYTES = 14 + 60 + 20;
const FIRST_COLUMN_SIZE = 1024;
/** A syscall's handle column when it names none. */
const NO_HANDLE = -0x80000000;

export class Recorder {
  readonly capacity: number;
  /** The kernel clock's reading when recording began: events' times count from it. */
  readonly startedAt: number;
  readonly now: () => number;
  private readonly reserved: number;
  private count = 0;
  private droppedCount = 0;
  // Columns, one slot per event, as narrow as their values allow. `a` and
  // `b` are the kind's numbers (a syscall's errno and handle; a packet's
  // length, and its direction, medium and number); `extra` holds, by slot,
  // the args of the rare kinds, so that a syscall writes nothing there.
  private ts = new Float64Array(0);
  private dur = new Float32Array(0);
  private a = new Int32Array(0);
  private b = new Int32Array(0);
  private kind = new Uint8Array(0);
  private readonly track: string[] = [];
  private readonly name: string[] = [];
  private readonly extra = new Map<number, EventArgs>();
  /** Packets' first bytes, PACKET_HEAD_BYTES each by packet number: a copy into one slab, not an allocation per frame. */
  private heads = new Uint8Array(0);
  private packets = 0;

  constructor(options: RecorderOptions) {
    const capacity = options.capacity ?? DEFAULT_TRACE_EVENTS;
    // A packet's number shares an int32 with three flag bits.
    if (!Number.isInteger(capacity) || capacity < 0 || capacity > 1 << 28) throw new Error(`trace capacity must be an integer from 0 to 2^28, not ${capacity}`);
    this.capacity = capacity;
    this.reserved = Math.floor(capacity / 100);
    this.now = options.now;
    this.startedAt = this.now();
  }

  get length(): number {
    return this.count;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  /**
   * A served call: `start` is when the kernel took the request, `end` when it
   * replied (kernel clock). `handle` is the handle it acted on or created;
   * anything but a 32-bit integer (NaN when the call names none) is left out.
   */
  syscall(track: string, name: string, start: number, end: number, errno: number, handle: number): void {
    const i = this.slot(SYSCALL);
    if (i < 0) return;
    this.ts[i] = start;
    this.dur[i] = end - start;
    this.a[i] = errno;
    this.b[i] = (handle | 0) === handle && handle !== NO_HANDLE ? handle : NO_HANDLE;
    this.track[i] = track;
    this.name[i] = name;
  }

  /** A TCP connection's control transition; `conn` is 'local > remote'. */
  transition(track: string, from: string, to: string, event: string, conn: string): void {
    this.instant(TRANSITION, track, `${from} -> ${to}`, { conn, event });
  }

  /** A domain attached, detached or was reported (oops). */
  lifecycle(track: string, name: string, args?: EventArgs): void {
    this.instant(LIFECYCLE, track, name, args);
  }

  /** A line a domain logged, where the kernel sees it (lockstep's log notices), cut to LOG_LINE_CHARS. */
  log(track: string, line: string): void {
    this.instant(LOG, track, line.length > LOG_LINE_CHARS ? `${line.slice(0, LOG_LINE_CHARS)}...` : line, undefined);
  }

  /**
   * A frame on an interface: keeps its length and the first bytes of its
   * headers; the summary (protocol, addresses, TCP flags) is made on export.
   */
  packet(track: string, iface: string, direction: PacketDirection, frame: Uint8Array, ethernet: boolean): void {
    const i = this.slot(PACKET);
    if (i < 0) return;
    this.ts[i] = this.now();
    this.dur[i] = NaN;
    const p = this.packets++;
    if ((p + 1) * PACKET_HEAD_BYTES > this.heads.length) {
      const next = new Uint8Array(Math.min(this.capacity, Math.max(FIRST_COLUMN_SIZE, (p + 1) * 2)) * PACKET_HEAD_BYTES);
      next.set(this.heads);
      this.heads = next;
    }
    const n = Math.min(frame.byteLength, PACKET_HEAD_BYTES);
    this.heads.set(n === frame.byteLength ? frame : frame.subarray(0, n), p * PACKET_HEAD_BYTES);
    this.a[i] = frame.byteLength;
    this.b[i] = (p << 3) | (ethernet ? 4 : 0) | DIRECTIONS.indexOf(direction);
    this.track[i] = track;
    this.name[i] = iface;
  }

  /** Every event kept, in the order recorded, with times in microseconds since `startedAt`. */
  events(): RecordedEvent[] {
    const out: RecordedEvent[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) {
      const kind = this.kind[i]!;
      const e: RecordedEvent = { ts: micros(this.ts[i]! - this.startedAt), track: this.track[i]!, kind: KINDS[kind]!, name: this.name[i]! };
      switch (kind) {
        case SYSCALL: {
          e.dur = micros(this.dur[i]!);
          const errno = this.a[i]!;
          e.args = { result: errno === 0 ? 'OK' : errnoName(errno) };
          if (this.b[i] !== NO_HANDLE) e.args.handle = this.b[i]!;
          break;
        }
        case PACKET: {
          const b = this.b[i]!;
          const at = (b >>> 3) * PACKET_HEAD_BYTES;
          const { name, args } = summarizeFrame(this.heads.subarray(at, at + Math.min(this.a[i]!, PACKET_HEAD_BYTES)), (b & 4) !== 0);
          e.name = name;
          e.args = { iface: this.name[i]!, dir: DIRECTIONS[b & 3]!, bytes: this.a[i]!, ...args };
          break;
        }
        default: {
          const args = this.extra.get(i);
          if (args) e.args = { ...args };
        }
      }
      out[i] = e;
    }
    return out;
  }

  timeline(): RecordedTimeline {
    return { events: this.events(), dropped: this.droppedCount };
  }

  private instant(kind: number, track: string, name: string, args: EventArgs | undefined): void {
    const i = this.slot(kind);
    if (i < 0) return;
    this.ts[i] = this.now();
    this.dur[i] = NaN;
    this.track[i] = track;
    this.name[i] = name;
    if (args) this.extra.set(i, args);
  }

  /** The next free slot for an event of `kind`, or -1 (and one more dropped) past the bound. */
  private slot(kind: number): number {
    const limit = kind === LIFECYCLE ? this.capacity : this.capacity - this.reserved;
    if (this.count >= limit) {
      this.droppedCount++;
      return -1;
    }
    const i = this.count++;
    if (i >= this.kind.length) this.grow();
    this.kind[i] = kind;
    return i;
  }

  /** Doubles the typed columns, never past the capacity: a short run holds little. */
  private grow(): void {
    const size = Math.min(this.capacity, Math.max(FIRST_COLUMN_SIZE, this.kind.length * 2));
    const widen = <T extends Float64Array | Float32Array | Int32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old);
      return next;
    };
    this.ts = widen(this.ts, (n) => new Float64Array(n));
    this.dur = widen(this.dur, (n) => new Float32Array(n));
    this.a = widen(this.a, (n) => new Int32Array(n));
    this.b = widen(this.b, (n) => new Int32Array(n));
    this.kind = widen(this.kind, (n) => new Uint8Array(n));
  }
}

/** Milliseconds to microseconds, to a tenth: finer is below the clock's worth and only lengthens the JSON. */
const micros = (ms: number): number => Math.round(ms * 10_000) / 10;

const TCP_FLAG_LETTERS: [number, string][] = [
  [0x02, 'S'],
  [0x01, 'F'],
  [0x04, 'R'],
  [0x08, 'P'],
  [0x20, 'U'],
  [0x40, 'E'],
  [0x80, 'W'],
  [0x10, '.'],
];

/** tcpdump's notation: S, F, R, P, U, E, W, and '.' for ACK. */
export function tcpFlags(flags: number): string {
  let s = '';
  for (const [bit, letter] of TCP_FLAG_LETTERS) if (flags & bit) s += letter;
  return s || 'none';
}

/**
 * A frame's one-line summary, as tcpdump would put it
 * ('tcp 10.0.0.1:24681 > 10.0.0.2:24680 [S.]'), from its first bytes.
 * Reads only what is there: a truncated or strange frame gets a vaguer name.
 */
export function summarizeFrame(head: Uint8Array, ethernet: boolean): { name: string; args: EventArgs } {
  const u16 = (i: number) => (head[i]! << 8) | head[i + 1]!;
  const ip = (i: number) => formatIpv4Address(((head[i]! << 24) | (head[i + 1]! << 16) | (head[i + 2]! << 8) | head[i + 3]!) >>> 0);
  let o = 0;
  if (ethernet) {
    if (head.length < 14) return { name: 'runt frame', args: { proto: 'ethernet' } };
    const type = u16(12);
    if (type === 0x0806) {
      if (head.length < 42) return { name: 'arp', args: { proto: 'arp' } };
      const op = u16(20);
      return { name: op === 1 ? `arp who-has ${ip(38)} tell ${ip(28)}` : op === 2 ? `arp reply ${ip(28)}` : `arp op ${op}`, args: { proto: 'arp' } };
    }
    if (type !== 0x0800) return { name: `ethertype 0x${type.toString(16).padStart(4, '0')}`, args: { proto: 'ethernet' } };
    o = 14;
  }
  if (head.length < o + 20 || head[o]! >> 4 !== 4) return { name: 'not ipv4', args: { proto: 'unknown' } };
  const ihl = (head[o]! & 15) * 4;
  const total = u16(o + 2);
  const proto = head[o + 9]!;
  const src = ip(o + 12);
  const dst = ip(o + 16);
  const l4 = o + ihl;
  const fragment = (u16(o + 6) & 0x1fff) !== 0;
  if (fragment || head.length < l4 + 8) return { name: `ip ${src} > ${dst} proto ${proto}${fragment ? ' fragment' : ''}`, args: { proto: 'ipv4' } };
  switch (proto) {
    case 6: {
      if (head.length < l4 + 14) return { name: `tcp ${src} > ${dst}`, args: { proto: 'tcp' } };
      const flags = tcpFlags(head[l4 + 13]!);
      const payload = Math.max(0, total - ihl - (head[l4 + 12]! >> 4) * 4);
      return { name: `tcp ${src}:${u16(l4)} > ${dst}:${u16(l4 + 2)} [${flags}]`, args: { proto: 'tcp', flags, payload } };
    }
    case 17:
      return { name: `udp ${src}:${u16(l4)} > ${dst}:${u16(l4 + 2)}`, args: { proto: 'udp', payload: Math.max(0, u16(l4 + 4) - 8) } };
    case 1: {
      const type = head[l4]!;
      const what = type === 8 ? 'echo request' : type === 0 ? 'echo reply' : type === 3 ? 'unreachable' : `type ${type}`;
      return { name: `icmp ${src} > ${dst} ${what}`, args: { proto: 'icmp' } };
    }
    default:
      return { name: `ip ${src} > ${dst} proto ${proto}`, args: { proto: 'ipv4' } };
  }
}
