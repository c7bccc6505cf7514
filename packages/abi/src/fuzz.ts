/**
 * A seeded, deterministic generator of hostile syscall frames, and a ledger
 * that judges the kernel's answers to them.
 *
 * `SyscallFuzzer.next()` returns one frame of a named kind (see FUZZ_KINDS):
 * bytes that are not a request, msgpack of the wrong shape, requests built by
 * walking each syscall's TypeBox argument schema (valid ones biased toward
 * edge values, and ones just past a bound), mutations of valid requests, and
 * valid requests on handles the caller was never given. Each frame carries
 * `expect`, what the ABI's framing rules say the kernel must make of it
 * (`judgeFrame`), so a run is a differential test of the kernel's decoder and
 * validator as well as a search for crashes.
 *
 * `observe(frame, reply)` feeds the kernel's answer back: the ledger learns
 * the handles this domain created (socket, accept), closed (stale ones to
 * replay), the numbers its grants produced in other domains' tables, and the
 * ports it bound. It reports a breach when a call succeeded on a handle the
 * domain does not hold, and an anomaly when an answer broke the ABI's rules
 * otherwise (wrong call id or errno, an errno the syscall table does not
 * list, the domain's own handle refused, EFAULT).
 *
 * Determinism: every choice comes from one xoshiro128** stream seeded by
 * `seed`, and the number of draws per frame never depends on what the
 * ledger holds (a choice among the domain's handles is made from a value
 * drawn whatever the ledger contains). So the same seed gives the same
 * sequence of kinds and syscalls whatever the kernel answers, and the same
 * bytes when it answers the same.
 */
import { Kind, type TSchema } from '@sinclair/typebox';
import { decodeFrame, encodeRequest, MAX_CALL_ID, MAX_FRAME_BYTES, peekCallId, UNKNOWN_CALL_ID, type Reply } from './codec.js';
import {
  AF_INET,
  F_GETFL,
  F_SETFL,
  IP_MTU_DISCOVER,
  IP_PMTUDISC_DO,
  IPPROTO_ICMP,
  IPPROTO_IP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_PEEK,
  MSG_TRUNC,
  O_NONBLOCK,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  Rights,
  RIGHTS_ALL,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_RCVBUF,
  SO_RCVTIMEO,
  SO_REUSEADDR,
  SO_SNDBUF,
  SO_SNDTIMEO,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
  UDP_MAX_PAYLOAD,
} from './constants.js';
import { Errno, errnoName, type ErrnoName } from './errno.js';
import { Xoshiro128 } from './rng.js';
import { COMMON_ERRORS, DOMAIN_NAME_MAX, SYSCALL_BY_NUMBER, SYSCALLS, SYS, type SyscallName } from './syscalls.js';
import { argsProblem, argsValid } from './validate.js';

// ---- kinds ---------------------------------------------------------------

/** Every kind of frame the fuzzer makes, named `group.kind` so reports can tally them. */
export const FUZZ_KINDS = [
  // Bytes that are not a request at all.
  'bytes.random', // random bytes, some starting like an array
  'bytes.truncated', // msgpack cut short
  'bytes.hugeLength', // length prefixes (array, map, str, bin, ext) far beyond the frame
  'bytes.oversize', // frames over MAX_FRAME_BYTES (and one exactly at it)
  'bytes.notBytes', // messages that are not a Uint8Array: strings, objects, other typed arrays, ArrayBuffer...
  'bytes.shared', // a valid request in a SharedArrayBuffer the domain still holds
  // Well-formed msgpack of the wrong shape.
  'shape.notArray',
  'shape.short', // [] and [id]
  'shape.badCallId',
  'shape.unknownSyscall',
  'shape.wrongTypes', // one argument or field of another type
  'shape.arity', // arguments or fields missing or extra
  'shape.badNumbers', // NaN, infinities, fractions, -0, 2^53 where an integer goes
  'shape.nested', // deep nesting, hostile map keys, extension types, duplicate keys
  'shape.coercionTrap', // objects whose toString is not a function, as call id or syscall number
  // Requests generated from each syscall's argument schema.
  'schema.valid',
  'schema.noncanonical', // valid, in wider-than-needed msgpack encodings
  'schema.boundary', // exactly one value just past its schema's bound
  // Valid requests with their bytes or fields changed.
  'mutate.bitflip',
  'mutate.insert',
  'mutate.delete',
  'mutate.truncate',
  'mutate.swap', // arguments of one call sent as another's, or fields swapped between calls
  // Valid requests on handles the domain does not hold.
  'handle.forged', // random numbers and non-numbers
  'handle.nearValid', // the domain's own handles with the slot or the generation moved
  'handle.stale', // handles the domain itself closed
  'handle.foreign', // numbers other domains hold, or were given by this domain's grants
] as const;

export type FuzzKind = (typeof FUZZ_KINDS)[number];
type GroupOf<K> = K extends `${infer G}.${string}` ? G : never;
export type FuzzGroup = GroupOf<FuzzKind>;
export const FUZZ_GROUPS: readonly FuzzGroup[] = ['bytes', 'shape', 'schema', 'mutate', 'handle'];

/** Relative frequencies: most frames are schema-driven, so they get past validation and reach the handlers. */
const WEIGHTS: Record<FuzzKind, number> = {
  'bytes.random': 2,
  'bytes.truncated': 1.5,
  'bytes.hugeLength': 1,
  'bytes.oversize': 0.25, // each is over a megabyte
  'bytes.notBytes': 1,
  'bytes.shared': 0.5,
  'shape.notArray': 0.5,
  'shape.short': 0.5,
  'shape.badCallId': 1,
  'shape.unknownSyscall': 1,
  'shape.wrongTypes': 1.5,
  'shape.arity': 1.5,
  'shape.badNumbers': 1.5,
  'shape.nested': 1.5,
  'shape.coercionTrap': 0.5,
  'schema.valid': 14,
  'schema.noncanonical': 2,
  'schema.boundary': 3,
  'mutate.bitflip': 2,
  'mutate.insert': 1.5,
  'mutate.delete': 1.5,
  'mutate.truncate': 1.5,
  'mutate.swap': 1.5,
  'handle.forged': 2,
  'handle.nearValid': 2,
  'handle.stale': 2,
  'handle.foreign': 2,
};

/**
 * How the kernel lays out a handle (mirrors its HandleTable): the low bits
 * pick a slot, the bits above are the slot's generation, starting at 1.
 * Used only to aim near-valid forgeries; if the layout changes the attacks
 * stay valid, only less sharp (a cross-package test keeps the two equal).
 */
export const FUZZ_HANDLE_SLOT_BITS = 10;
const SLOTS = 1 << FUZZ_HANDLE_SLOT_BITS;
const GENERATIONS = 1 << 20;

// ---- what the kernel must make of a frame --------------------------------

/**
 * What the ABI's framing rules say the kernel does with a message, in the
 * order it checks them: not bytes, too large, not msgpack, not
 * [id, sysno, ...args], a bad call id (all 'malformed'); an unknown syscall
 * ('nosys'); arguments that do not fit the schema ('invalid', also counted
 * as malformed); otherwise a call that reaches its handler. `replyId` is the
 * call id the answer must carry.
 */
export type FrameVerdict =
  | { class: 'malformed'; errno: number; replyId: number; why: string }
  | { class: 'nosys'; errno: number; replyId: number }
  | { class: 'invalid'; errno: number; replyId: number; syscall: SyscallName; problem: string }
  | { class: 'call'; replyId: number; syscall: SyscallName; args: unknown[] };

export function judgeFrame(message: unknown): FrameVerdict {
  const malformed = (errno: number, replyId: number, why: string): FrameVerdict => ({ class: 'malformed', errno, replyId, why });
  if (!(message instanceof Uint8Array)) return malformed(Errno.EINVAL, UNKNOWN_CALL_ID, 'frame is not a byte array');
  if (message.byteLength > MAX_FRAME_BYTES) return malformed(Errno.EMSGSIZE, peekCallId(message), 'frame too large');
  const frame = message.buffer instanceof SharedArrayBuffer ? message.slice() : message;
  let decoded: unknown;
  try {
    decoded = decodeFrame(frame);
  } catch {
    return malformed(Errno.EINVAL, peekCallId(frame), 'frame is not msgpack');
  }
  if (!Array.isArray(decoded) || decoded.length < 2) return malformed(Errno.EINVAL, peekCallId(frame), 'frame is not [id, sysno, ...args]');
  const [callId, sysno] = decoded as [number, number];
  if (!Number.isInteger(callId) || callId < 1 || callId > MAX_CALL_ID) return malformed(Errno.EINVAL, UNKNOWN_CALL_ID, 'bad call id');
  const syscall = Number.isInteger(sysno) ? SYSCALL_BY_NUMBER[sysno] : undefined;
  if (!syscall) return { class: 'nosys', errno: Errno.ENOSYS, replyId: callId };
  const args = decoded.slice(2);
  if (!argsValid(sysno, args)) return { class: 'invalid', errno: Errno.EINVAL, replyId: callId, syscall, problem: argsProblem(sysno, args) ?? '' };
  return { class: 'call', replyId: callId, syscall, args };
}

/** True for the verdicts the kernel counts in a domain's malformed-frame total. */
export const countsAsMalformed = (v: FrameVerdict): boolean => v.class === 'malformed' || v.class === 'invalid';

// ---- the ledger ----------------------------------------------------------

/** Calls whose first argument is a handle the caller must hold for the call to succeed. */
const HANDLE_CALLS: ReadonlySet<SyscallName> = new Set(
  (Object.keys(SYSCALLS) as SyscallName[]).filter((n) => !['null', 'socket', 'poll', 'stats'].includes(n)),
);
const RECENT = 64;

/** What one answer meant: its label for tallies, and what was wrong with it, if anything. */
export interface Observation {
  /** 'OK' or the errno name for a call; `malformed EINVAL`, `invalid EINVAL`, `nosys ENOSYS` otherwise. */
  outcome: string;
  /** A call succeeded on a handle this domain does not hold: isolation failed. */
  breach?: string;
  /** The answer broke the ABI's rules in another way (wrong id or errno, an own handle refused, EFAULT). */
  anomaly?: string;
}

/**
 * The handles a domain holds, as far as its own calls and their answers
 * show: created by socket and accept, given up by close. It assumes no
 * other domain grants handles to this one (a grant's number is sent out of
 * band, and the fuzzer is told none).
 */
export class FuzzLedger {
  /** Handles this domain holds, in the order it got them. */
  readonly live: number[] = [];
  /** Handles this domain closed (most recent last). */
  readonly stale: number[] = [];
  /** Numbers this domain's grants produced in other domains' tables. */
  readonly foreign: number[] = [];
  /** Ports this domain bound or learnt from its own sockets. */
  readonly ports: number[] = [];

  owns(h: unknown): boolean {
    return typeof h === 'number' && this.live.includes(h);
  }

  /** Records a handle the domain got outside the fuzzer's frames (its own libc calls). */
  adopt(h: number): void {
    if (!this.live.includes(h)) this.live.push(h);
  }

  /** Records a close made outside the fuzzer's frames. */
  forget(h: number): void {
    const i = this.live.indexOf(h);
    if (i < 0) return;
    this.live.splice(i, 1);
    remember(this.stale, h);
  }

  learnPort(port: unknown): void {
    if (typeof port === 'number' && port > 0 && !this.ports.includes(port)) remember(this.ports, port);
  }

  /**
   * A call that would wait longer than `limitMs` however the kernel answers:
   * a poll with no timeout (or a long one) on handles that are all this
   * domain's, so none answers POLLNVAL at once. Such a frame can only be sent
   * when one of them is ready (the caller checks with a poll of timeout 0).
   */
  mayWaitLong(v: FrameVerdict, limitMs: number): boolean {
    if (v.class !== 'call' || v.syscall !== 'poll') return false;
    const [fds, timeout] = v.args as [[unknown, number][], number];
    return (timeout < 0 || timeout > limitMs) && fds.every(([h]) => this.owns(h));
  }

  /** Judges the kernel's answer to a frame and learns from it. */
  observe(v: FrameVerdict, reply: Reply): Observation {
    const [replyId, errno, result] = reply;
    const problems: string[] = [];
    if (replyId !== v.replyId) problems.push(`answered as call ${replyId}, expected ${v.replyId}`);
    if (v.class !== 'call') {
      if (errno !== v.errno) problems.push(`${v.class} frame answered ${errnoName(errno)}, expected ${errnoName(v.errno)}`);
      return { outcome: `${v.class} ${errnoName(errno)}`, anomaly: problems.join('; ') || undefined };
    }
    const { syscall, args } = v;
    const h = args[0];
    let breach: string | undefined;
    if (errno === Errno.EFAULT) problems.push(`${syscall}: EFAULT (the kernel caught an internal error)`);
    else if (errno !== 0 && !documented(syscall, errno)) problems.push(`${syscall}: ${errnoName(errno)} is not among its documented errors`);
    if (HANDLE_CALLS.has(syscall)) {
      if (errno === 0 && !this.owns(h)) breach = `${syscall} succeeded on handle ${show(h)}, which this domain does not hold`;
      const refused = errno === Errno.EBADF || errno === Errno.ENOTSOCK || (errno === Errno.EACCES && syscall !== 'grant');
      if (refused && this.owns(h)) problems.push(`${syscall} refused this domain's own handle ${h} with ${errnoName(errno)}`);
    }
    if (errno === 0) {
      switch (syscall) {
        case 'socket':
        case 'accept': {
          const got = syscall === 'socket' ? result : (result as unknown[] | undefined)?.[0];
          if (typeof got !== 'number' || this.owns(got)) problems.push(`${syscall} returned ${show(got)}, not a new handle`);
          else this.live.push(got);
          if (syscall === 'accept') this.learnPort((result as unknown[])[2]);
          break;
        }
        case 'close':
          if (this.owns(h)) this.forget(h as number);
          break;
        case 'grant':
          if (typeof result === 'number') remember(this.foreign, result);
          break;
        case 'bind':
          this.learnPort((args[1] as { port: number }).port);
          break;
        case 'getsockname':
          this.learnPort((result as unknown[])[1]);
          break;
        case 'poll': {
          const fds = args[0] as [unknown, number][];
          const revents = result as number[];
          fds.forEach(([fd], i) => {
            if (!this.owns(fd) && revents[i] !== POLLNVAL) breach ??= `poll saw ${revents[i]} on handle ${show(fd)}, which this domain does not hold`;
            if (this.owns(fd) && revents[i]! & POLLNVAL) problems.push(`poll answered POLLNVAL for this domain's own handle ${fd}`);
          });
          break;
        }
        case 'stats': {
          const held = (result as { handles: number }).handles;
          if (held !== this.live.length) problems.push(`stats counts ${held} handles, the ledger ${this.live.length}`);
          break;
        }
      }
    }
    return { outcome: errno === 0 ? 'OK' : errnoName(errno), breach, anomaly: problems.join('; ') || undefined };
  }
}

function remember(list: number[], x: number): void {
  list.push(x);
  if (list.length > RECENT) list.shift();
}

function documented(syscall: SyscallName, errno: number): boolean {
  const name = errnoName(errno) as ErrnoName;
  return (SYSCALLS[syscall].errors as readonly string[]).includes(name) || (COMMON_ERRORS as readonly string[]).includes(name);
}

function show(x: unknown): string {
  if (typeof x === 'number') return Object.is(x, -0) ? '-0' : String(x);
  if (typeof x === 'string') return JSON.stringify(x.slice(0, 20));
  if (x instanceof Uint8Array) return `bytes(${x.length})`;
  if (Array.isArray(x)) return `array(${x.length})`;
  return x === null ? 'null' : typeof x;
}

// ---- msgpack written by hand ----------------------------------------------

/** Encoded msgpack spliced into a value as it is: extension types, -0, headers msgpackr would never write. */
class RawMsgpack {
  constructor(readonly bytes: Uint8Array) {}
}

/** A map whose entries may repeat a key (msgpack allows it; decoders keep one). */
class EntryMap {
  constructor(readonly entries: [string, unknown][]) {}
}

/**
 * A small msgpack writer for what the real encoder will not produce: wider
 * encodings than a value needs (an integer as uint64 or float64, a short
 * string as str32), -0, duplicate keys, raw extension bytes. `wide` is asked
 * at each value whether to pick a longer encoding.
 */
class Writer {
  private readonly parts: Uint8Array[] = [];
  private bytes: number[] = [];

  constructor(private readonly wide: () => boolean = () => false) {}

  write(v: unknown): this {
    if (v === null) this.bytes.push(0xc0);
    else if (v === undefined) this.bytes.push(0xd4, 0x00, 0x00); // msgpackr's undefined
    else if (typeof v === 'boolean') this.bytes.push(v ? 0xc3 : 0xc2);
    else if (typeof v === 'number') this.number(v);
    else if (typeof v === 'bigint') this.bytes.push(0xd3, ...be64(BigInt.asIntN(64, v)));
    else if (typeof v === 'string') {
      const utf8 = new TextEncoder().encode(v);
      this.header(utf8.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      this.splice(utf8);
    } else if (v instanceof Uint8Array) {
      this.header(v.length, -1, -1, 0xc4, 0xc5, 0xc6);
      this.splice(v);
    } else if (v instanceof RawMsgpack) this.splice(v.bytes);
    else if (Array.isArray(v)) {
      this.header(v.length, 0x90, 15, -1, 0xdc, 0xdd);
      for (const x of v) this.write(x);
    } else if (v instanceof EntryMap) {
      this.header(v.entries.length, 0x80, 15, -1, 0xde, 0xdf);
      for (const [k, x] of v.entries) this.write(k).write(x);
    } else if (typeof v === 'object') this.write(new EntryMap(Object.entries(v)));
    else this.bytes.push(0xc0);
    return this;
  }

  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.parts) out.set(p, (at += p.length) - p.length);
    return out;
  }

  private number(v: number): void {
    const wide = this.wide();
    if (!Number.isSafeInteger(v) || Object.is(v, -0)) return this.float(v, wide);
    if (wide) {
      // The same integer, encoded longer than it needs: as a float, or as a 64-bit integer.
      if (v % 2 === 0) return this.float(v, true);
      return void this.bytes.push(v < 0 ? 0xd3 : 0xcf, ...be64(BigInt(v)));
    }
    if (v >= 0 && v <= 0x7f) this.bytes.push(v);
    else if (v < 0 && v >= -32) this.bytes.push(v & 0xff);
    else if (v >= 0 && v <= 0xff) this.bytes.push(0xcc, v);
    else if (v >= 0 && v <= 0xffff) this.bytes.push(0xcd, v >> 8, v & 0xff);
    else if (v >= 0 && v <= 0xffffffff) this.bytes.push(0xce, ...be32(v));
    else if (v >= -0x80 && v < 0) this.bytes.push(0xd0, v & 0xff);
    else if (v >= -0x8000 && v < 0) this.bytes.push(0xd1, (v >> 8) & 0xff, v & 0xff);
    else if (v >= -0x80000000 && v < 0) this.bytes.push(0xd2, ...be32(v >>> 0));
    else this.bytes.push(v < 0 ? 0xd3 : 0xcf, ...be64(BigInt(v)));
  }

  private float(v: number, allow32: boolean): void {
    if (allow32 && Math.fround(v) === v) {
      const b = new DataView(new ArrayBuffer(4));
      b.setFloat32(0, v);
      this.bytes.push(0xca, ...new Uint8Array(b.buffer));
      return;
    }
    const b = new DataView(new ArrayBuffer(8));
    b.setFloat64(0, v);
    this.bytes.push(0xcb, ...new Uint8Array(b.buffer));
  }

  /** A length header: the fix form when it fits (unless wide), else the 8, 16 or 32-bit form (-1: none). */
  private header(n: number, fix: number, fixMax: number, h8: number, h16: number, h32: number): void {
    let width = fix >= 0 && n <= fixMax ? 0 : h8 >= 0 && n <= 0xff ? 1 : n <= 0xffff ? 2 : 4;
    if (width < 4 && this.wide()) width = width === 0 && h8 >= 0 ? 1 : width < 2 ? 2 : 4;
    if (width === 0) this.bytes.push(fix | n);
    else if (width === 1) this.bytes.push(h8, n);
    else if (width === 2) this.bytes.push(h16, n >> 8, n & 0xff);
    else this.bytes.push(h32, ...be32(n));
  }

  private splice(b: Uint8Array): void {
    if (b.length < 64) {
      for (const x of b) this.bytes.push(x);
      return;
    }
    this.flush();
    this.parts.push(b);
  }

  private flush(): void {
    if (this.bytes.length) this.parts.push(Uint8Array.from(this.bytes));
    this.bytes = [];
  }
}

const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
function be64(n: bigint): number[] {
  const u = BigInt.asUintN(64, n);
  return [...be32(Number(u >> 32n)), ...be32(Number(u & 0xffffffffn))];
}

const writeFrame = (values: unknown[], wide?: () => boolean): Uint8Array => new Writer(wide).write(values).finish();

// ---- dictionaries ----------------------------------------------------------

/**
 * Values that mean something to the kernel, by the schema title (or property
 * name) of the integer or string they go into: with random values alone, a
 * socket() would almost never be valid and the handlers behind it would go
 * untested. Repeated entries are more likely.
 */
const INT_DICT: Record<string, readonly number[]> = {
  domain: [AF_INET, AF_INET, AF_INET, 0, 1, 10, 17],
  type: [SOCK_DGRAM, SOCK_STREAM, SOCK_DGRAM | O_NONBLOCK, SOCK_STREAM | O_NONBLOCK, 3, 5, 0, 0x80000],
  protocol: [0, 0, IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMP, 41, 255],
  'sendto.flags': [0, 0, 0, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_NOSIGNAL | MSG_DONTWAIT, MSG_PEEK, 1, 0x8000],
  'recvfrom.flags': [0, 0, 0, MSG_DONTWAIT, MSG_PEEK, MSG_PEEK | MSG_DONTWAIT, MSG_TRUNC, MSG_NOSIGNAL, 1],
  level: [SOL_SOCKET, SOL_SOCKET, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP, 41, 0xffff],
  optname: [SO_RCVBUF, SO_SNDBUF, SO_RCVTIMEO, SO_SNDTIMEO, SO_REUSEADDR, SO_KEEPALIVE, SO_ERROR, IP_MTU_DISCOVER, TCP_NODELAY, 0, 3, 99],
  value: [0, 1, IP_PMTUDISC_DO, 3, 2047, 2048, 65536, 1 << 22, (1 << 22) + 1],
  cmd: [F_GETFL, F_SETFL, F_SETFL, 0, 1, 2, 1030],
  arg: [O_NONBLOCK, 0, O_NONBLOCK | 1, ~O_NONBLOCK],
  how: [SHUT_RD, SHUT_WR, SHUT_RDWR, 3, -1],
  backlog: [0, 1, 4, 128, 4096, 4097],
  timeout: [0, 0, 1, 5, -1, -2, 1000],
  maxlen: [0, 1, 16, 1472, UDP_MAX_PAYLOAD, 65536],
  rights: [RIGHTS_ALL, Rights.READ, Rights.WRITE, Rights.CONTROL, Rights.GRANT, Rights.READ | Rights.WRITE, 0, 0x10, 0xff],
  events: [POLLIN, POLLOUT, POLLIN | POLLOUT, POLLERR | POLLHUP, POLLNVAL, 0, 0xffff],
  port: [0, 1, 7, 9, 80, 1023, 1024, 32767, 32768, 60999, 61000, 65535],
};
const ADDRS = ['127.0.0.1', '127.0.0.1', '127.0.0.1', '0.0.0.0', '255.255.255.255', '127.255.255.255', '127.0.0.2', '10.0.0.1', '224.0.0.1', '1.2.3.4'];
/** Argument lists that make sockets, tried often, so the fuzzer keeps handles to aim at. */
const SOCKETS: readonly number[][] = [
  [AF_INET, SOCK_DGRAM, 0],
  [AF_INET, SOCK_STREAM, 0],
  [AF_INET, SOCK_DGRAM | O_NONBLOCK, IPPROTO_UDP],
  [AF_INET, SOCK_STREAM | O_NONBLOCK, IPPROTO_TCP],
  [AF_INET, SOCK_DGRAM, IPPROTO_ICMP],
];
/** Strings for garbage, and keys that trip careless code: prototype names, coercion hooks. */
const STRINGS = ['', 'a', '127.0.0.1', '1024', 'socket', '%s%n', '../../etc/passwd', '\u0000', '\u202e', '\ud800', 'é', 'x'.repeat(300)];
const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'toJSON', 'then', 'length', 'addr', 'port', ''];
const CHARS = 'aZ09 ./%\u0000é\u202e\ufeff\uffff\ud800-_';

// ---- the generator ---------------------------------------------------------

export interface FuzzOptions {
  seed: number;
  /** Kinds or whole groups to draw from (default: every kind). */
  kinds?: readonly (FuzzKind | FuzzGroup)[];
  /** Syscalls the schema-driven kinds build requests for (default: all). */
  syscalls?: readonly SyscallName[];
  /** Names to grant to and revoke from: other domains, and the fuzzer's own (EINVAL). */
  domains?: readonly string[];
  /** Ports to aim at besides edge values and the fuzzer's own. */
  ports?: readonly number[];
}

export interface FuzzFrame {
  /** 0, 1, 2... in the order generated. */
  index: number;
  kind: FuzzKind;
  /** What to post on the channel: bytes, except for kinds that test other messages. */
  message: unknown;
  /** The syscall the frame was built as, before any mutation. */
  syscall?: SyscallName;
  /** What the kernel must make of it (the message is judged as generated). */
  expect: FrameVerdict;
}

type HandleMode = 'mixed' | 'forged' | 'nearValid' | 'stale' | 'foreign';

export class SyscallFuzzer {
  readonly ledger = new FuzzLedger();
  private readonly rng: Xoshiro128;
  private readonly kinds: FuzzKind[];
  private readonly cumulative: number[];
  private readonly syscalls: SyscallName[];
  private readonly handleSyscalls: SyscallName[];
  private readonly domains: string[];
  private readonly ports: number[];
  private readonly patterns = new Map<string, RegExp>();
  private handleMode: HandleMode = 'mixed';
  /** The syscall whose arguments are being made: some dictionaries differ per call (send and recv flags). */
  private syscall: SyscallName | undefined;
  private nextId = 1;
  private index = 0;

  constructor(readonly options: FuzzOptions) {
    this.rng = new Xoshiro128(options.seed);
    const wanted = options.kinds ?? FUZZ_KINDS;
    this.kinds = FUZZ_KINDS.filter((k) => wanted.some((w) => w === k || k.startsWith(`${w}.`)));
    if (this.kinds.length === 0) throw new RangeError(`no fuzz kind matches ${JSON.stringify(wanted)}`);
    let total = 0;
    this.cumulative = this.kinds.map((k) => (total += WEIGHTS[k]));
    this.syscalls = [...(options.syscalls ?? (Object.keys(SYSCALLS) as SyscallName[]))];
    this.handleSyscalls = this.syscalls.filter((n) => HANDLE_CALLS.has(n) || n === 'poll');
    if (this.handleSyscalls.length === 0) this.handleSyscalls.push('close');
    this.domains = [...(options.domains ?? []), 'nobody', 'x'.repeat(DOMAIN_NAME_MAX)];
    this.ports = [...INT_DICT.port!, ...(options.ports ?? [])];
  }

  /** The next frame. */
  next(): FuzzFrame {
    const kind = this.pickKind();
    this.handleMode = 'mixed';
    const { message, syscall } = this.make(kind);
    return { index: this.index++, kind, message, syscall, expect: judgeFrame(message) };
  }

  /** Judges the kernel's answer to `frame` (see FuzzLedger.observe). */
  observe(frame: FuzzFrame, reply: Reply): Observation {
    return this.ledger.observe(frame.expect, reply);
  }

  // ---- draws ----

  private u32(): number {
    return this.rng.nextUint32();
  }
  private below(n: number): number {
    return n <= 1 ? (this.u32(), 0) : this.u32() % n;
  }
  private chance(p: number): boolean {
    return this.rng.nextFloat() < p;
  }
  private pick<T>(list: readonly T[]): T {
    return list[this.below(list.length)]!;
  }
  /** A uniform integer in [lo, hi], for spans up to 2^53 (two draws). */
  private between(lo: number, hi: number): number {
    const x = (this.u32() * 2 ** 21 + (this.u32() >>> 11)) / 2 ** 53;
    return Math.min(hi, lo + Math.floor(x * (hi - lo + 1)));
  }
  private randomBytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const r = this.u32();
      for (let j = 0; j < 4 && i + j < n; j++) b[i + j] = (r >>> (8 * j)) & 0xff;
    }
    return b;
  }
  private id(): number {
    const id = this.nextId;
    this.nextId = id >= MAX_CALL_ID ? 1 : id + 1;
    // Now and then an id at the edge of each msgpack width, so peekCallId's every branch is used.
    return this.below(16) === 0 ? this.pick([1, 127, 128, 255, 256, 65535, 65536, MAX_CALL_ID]) : id;
  }

  private pickKind(): FuzzKind {
    const x = this.rng.nextFloat() * this.cumulative[this.cumulative.length - 1]!;
    const i = this.cumulative.findIndex((c) => x < c);
    return this.kinds[i < 0 ? this.kinds.length - 1 : i]!;
  }

  // ---- kinds ----

  private make(kind: FuzzKind): { message: unknown; syscall?: SyscallName } {
    switch (kind) {
      case 'bytes.random':
        return { message: this.randomFrame() };
      case 'bytes.truncated': {
        const whole = this.chance(0.5) ? this.validFrame().bytes : writeFrame([this.id(), ...this.garbageList(1 + this.below(4), 3)]);
        return { message: whole.subarray(0, 1 + this.below(Math.max(1, whole.length - 1))).slice() };
      }
      case 'bytes.hugeLength':
        return { message: this.hugeLength() };
      case 'bytes.oversize':
        return this.oversize();
      case 'bytes.notBytes':
        return { message: this.notBytes() };
      case 'bytes.shared': {
        const { bytes, syscall } = this.validFrame();
        const offset = this.below(16);
        const shared = new Uint8Array(new SharedArrayBuffer(bytes.length + offset + this.below(16)), offset, bytes.length);
        shared.set(bytes);
        return { message: shared, syscall };
      }
      case 'shape.notArray':
        return { message: writeFrame([this.pick(this.notArrays())]).slice(1) }; // the value alone, not in a one-element array
      case 'shape.short':
        return { message: writeFrame(this.chance(0.5) ? [] : [this.id()]) };
      case 'shape.badCallId': {
        const bad = this.pick<unknown>([0, -1, MAX_CALL_ID + 1, 2 ** 53, 1.5, NaN, Infinity, -Infinity, '1', null, true, [1], {}, this.negZero(), new Uint8Array([1])]);
        return { message: writeFrame([bad, SYS.null, ...this.garbageList(this.below(3), 2)]) };
      }
      case 'shape.unknownSyscall': {
        const n = Object.keys(SYSCALLS).length;
        const sysno = this.pick<unknown>([-1, n, n + this.below(1000), 255, 256, 65535, 2 ** 31, 2 ** 32, 2 ** 53, this.u32(), -this.u32(), 1.5, NaN, -Infinity, 'socket', '1', '', null, false, [1], { no: 1 }, new Uint8Array([1])]);
        return { message: writeFrame([this.id(), sysno, ...this.garbageList(this.below(4), 2)]) };
      }
      case 'shape.wrongTypes':
      case 'shape.arity':
      case 'shape.badNumbers':
        return this.reshaped(kind);
      case 'shape.nested': {
        const { syscall, args } = this.validRequest();
        const out = [...args];
        const i = this.below(out.length + 1);
        out[i] = this.garbage(6, true);
        if (this.chance(0.3)) out[this.below(out.length)] = this.deep(50 + this.below(3000));
        return { message: writeFrame([this.id(), SYSCALLS[syscall].no, ...out]), syscall };
      }
      case 'shape.coercionTrap': {
        const trap = this.pick<unknown>([{ toString: 1 }, { toString: 'x', valueOf: 'y' }, [{ toString: 0 }], { valueOf: 0, toString: null }, [[{ toString: {} }]]]);
        const where = this.below(3);
        const frame = where === 0 ? [trap, SYS.null] : where === 1 ? [this.id(), trap] : [this.id(), trap, trap];
        return { message: writeFrame(frame) };
      }
      case 'schema.valid': {
        const { bytes, syscall } = this.validFrame();
        return { message: bytes, syscall };
      }
      case 'schema.noncanonical': {
        const { syscall, args, id } = this.validRequest();
        const values = [id, SYSCALLS[syscall].no, ...args].map((v) => this.reorder(v));
        // The widths come from 64 bits drawn up front, so how many values the frame holds
        // (a forged handle may be an array) never changes how many draws it takes.
        const bits = [this.u32(), this.u32()];
        let bit = 0;
        return { message: writeFrame(values, () => ((bits[(bit >> 5) & 1]! >>> (bit++ & 31)) & 1) === 1), syscall };
      }
      case 'schema.boundary': {
        const syscall = (this.syscall = this.pick(this.syscalls));
        const schema = SYSCALLS[syscall].args as TSchema;
        let args = this.invalid(schema) as unknown[];
        // A union may take the violated value in another branch; then one argument too many does it.
        if (argsValid(SYSCALLS[syscall].no, args)) args = [...(this.value(schema) as unknown[]), this.garbage(1)];
        // Written by hand: the garbage may hold values msgpackr cannot write (-0, repeated keys).
        return { message: writeFrame([this.id(), SYSCALLS[syscall].no, ...args]), syscall };
      }
      case 'mutate.bitflip':
      case 'mutate.insert':
      case 'mutate.delete':
      case 'mutate.truncate':
        return this.mutated(kind);
      case 'mutate.swap':
        return this.swapped();
      case 'handle.forged':
      case 'handle.nearValid':
      case 'handle.stale':
      case 'handle.foreign': {
        this.handleMode = kind.slice('handle.'.length) as HandleMode;
        const syscall = this.pick(this.handleSyscalls);
        const args = this.argsFor(syscall);
        return { message: encodeRequest(this.id(), SYSCALLS[syscall].no, args), syscall };
      }
    }
  }

  private validRequest(): { syscall: SyscallName; args: unknown[]; id: number } {
    const syscall = this.pick(this.syscalls);
    const args = this.argsFor(syscall);
    return { syscall, args, id: this.id() };
  }

  private validFrame(): { bytes: Uint8Array; syscall: SyscallName } {
    const { syscall, args, id } = this.validRequest();
    return { bytes: encodeRequest(id, SYSCALLS[syscall].no, args), syscall };
  }

  private randomFrame(): Uint8Array {
    const r = this.below(100);
    const n = r < 70 ? this.below(65) : r < 95 ? this.below(1025) : this.below(16385);
    const b = this.randomBytes(n);
    // A third look like an array with a small call id, so the decoder gets past the first byte.
    if (n >= 2 && this.chance(0.33)) {
      b[0] = 0x92 + this.below(4);
      b[1] = 1 + this.below(0x7f);
    }
    return b;
  }

  private hugeLength(): Uint8Array {
    const tail = this.randomBytes(this.below(17));
    const n = this.pick([0xffffffff, 0x7fffffff, 0x80000000, MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1, tail.length + 1, 0xffff]);
    const header = this.pick([
      [0xc6, ...be32(n)], // bin32
      [0xdb, ...be32(n)], // str32
      [0xdd, ...be32(n)], // array32
      [0xdf, ...be32(n)], // map32
      [0xc9, ...be32(n), 0x01], // ext32
      [0xc5, 0xff, 0xff], // bin16
      [0xda, 0xff, 0xff], // str16
      [0xdc, 0xff, 0xff], // array16
      [0xde, 0xff, 0xff], // map16
    ]);
    // Either the whole frame claims to be huge, or its first argument does.
    const prefix = this.chance(0.25) ? [] : [0x93, 0xce, ...be32(this.id()), SYS.sendto];
    return Uint8Array.from([...prefix, ...header, ...tail]);
  }

  private oversize(): { message: Uint8Array; syscall?: SyscallName } {
    const id = this.id();
    const choice = this.below(5);
    if (choice === 0) {
      // A valid sendto of exactly MAX_FRAME_BYTES: the largest frame the kernel must still decode.
      const h = this.handle();
      const probe = encodeRequest(id, SYS.sendto, [h, new Uint8Array(65536), 0, null]);
      return { message: encodeRequest(id, SYS.sendto, [h, new Uint8Array(MAX_FRAME_BYTES - (probe.length - 65536)), 0, null]), syscall: 'sendto' };
    }
    const size = MAX_FRAME_BYTES + this.pick([1, 2, 1024, MAX_FRAME_BYTES]);
    const frame = new Uint8Array(size);
    // The call id in each width, so the kernel must read it to answer a frame it will not decode.
    const idBytes = this.pick([[id & 0x7f], [0xcc, id & 0xff], [0xcd, (id >> 8) & 0xff, id & 0xff], [0xce, ...be32(id)]]);
    frame.set([0x94, ...idBytes, SYS.sendto, 0xcd, 0x04, 0x00, 0xc6, ...be32(size)]);
    return { message: frame, syscall: 'sendto' };
  }

  private notBytes(): unknown {
    const valid = this.validFrame().bytes;
    const choices: (() => unknown)[] = [
      () => 'a string, not a frame',
      () => this.u32(),
      () => null,
      () => undefined,
      () => true,
      () => ({ callId: 1, sysno: 0 }),
      () => Array.from(valid), // the right bytes, as a plain array
      () => valid.slice().buffer, // the right bytes, as an ArrayBuffer
      () => new DataView(valid.slice().buffer),
      () => new Int8Array(valid.slice().buffer),
      () => new Uint8ClampedArray(valid.slice().buffer),
      () => new Uint16Array(4),
      () => new Float64Array([1, 0]),
      () => BigInt(this.u32()),
      () => new Date(0),
      () => new Map([[1, valid]]),
      () => new Set([valid]),
      () => [valid],
    ];
    return this.pick(choices)();
  }

  private notArrays(): unknown[] {
    return [null, true, 0, -1, 1.5, 'string', new Uint8Array([0x92, 1, 0]), { callId: 1, sysno: 0 }, { 0: 1, 1: 0 }, this.negZero(), new RawMsgpack(Uint8Array.from([0xd6, 0xff, 0, 0, 0, 1])), undefined];
  }

  /** One argument or field of the wrong type, arguments or fields missing or extra, or a number no integer field takes. */
  private reshaped(kind: 'shape.wrongTypes' | 'shape.arity' | 'shape.badNumbers'): { message: Uint8Array; syscall: SyscallName } {
    const { syscall, args, id } = this.validRequest();
    const schema = SYSCALLS[syscall].args as TSchema;
    let out: unknown[] = args;
    if (kind === 'shape.arity') {
      const r = this.below(4);
      const k = this.below(Math.max(1, args.length));
      if (r === 0 && args.length > 0) out = args.slice(0, k);
      else if (r <= 1) out = [...args, ...this.garbageList(1 + this.below(3), 1)];
      else out = this.reshapeObject(schema, args, r === 2) ?? [...args, this.garbage(1)];
    } else {
      const leaves = leafPaths(schema, args).filter(([, s]) => kind === 'shape.wrongTypes' || s[Kind] === 'Integer');
      const value = kind === 'shape.wrongTypes' ? (s: TSchema) => this.wrongType(s) : () => this.badNumber();
      if (leaves.length === 0) out = [...args, value(schema)];
      else {
        const [path, s] = leaves[this.below(leaves.length)]!;
        out = setAt(args, path, value(s)) as unknown[];
      }
    }
    return { message: writeFrame([id, SYSCALLS[syscall].no, ...out]), syscall };
  }

  /** A copy of args with a field dropped from (or added to) its first object argument; undefined without one. */
  private reshapeObject(schema: TSchema, args: unknown[], drop: boolean): unknown[] | undefined {
    // Found by the schema, not the values: a forged handle may be an object too.
    const isObject = (s: TSchema): boolean => s[Kind] === 'Object' || (s[Kind] === 'Union' && (s.anyOf as TSchema[]).some(isObject));
    const i = ((schema.items ?? []) as TSchema[]).findIndex((s, j) => isObject(s) && args[j] !== null);
    if (i < 0) return undefined;
    const o = { ...(args[i] as Record<string, unknown>) };
    const keys = Object.keys(o);
    if (drop && keys.length > 0) delete o[keys[this.below(keys.length)]!];
    else o[this.pick(HOSTILE_KEYS.filter((k) => k !== '__proto__'))] = this.garbage(1);
    const out = [...args];
    out[i] = o;
    return out;
  }

  private wrongType(s: TSchema): unknown {
    const kind = s[Kind];
    const options: unknown[] = ['1', 1, 1.5, true, null, [], {}, new Uint8Array(2), this.negZero()];
    return this.pick(options.filter((o) => !sameKind(kind, o)));
  }

  private badNumber(): unknown {
    return this.pick<unknown>([NaN, Infinity, -Infinity, 0.5, -0.5, 2 ** 53, -(2 ** 53), 2 ** 64, 1e308, -1e308, 5e-324, this.negZero(), 2 ** 31 + 0.5]);
  }

  private negZero(): RawMsgpack {
    return new RawMsgpack(Uint8Array.from([0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0]));
  }

  private mutated(kind: 'mutate.bitflip' | 'mutate.insert' | 'mutate.delete' | 'mutate.truncate'): { message: Uint8Array; syscall: SyscallName } {
    const { bytes, syscall } = this.validFrame();
    const len = bytes.length;
    let out: Uint8Array;
    if (kind === 'mutate.bitflip') {
      out = bytes.slice();
      for (let n = 1 + this.below(4); n > 0; n--) {
        const bit = this.below(len * 8);
        out[bit >> 3]! ^= 1 << (bit & 7);
      }
    } else if (kind === 'mutate.insert') {
      const at = this.below(len + 1);
      const r = this.below(3);
      const k = 1 + this.below(8);
      const from = this.below(len);
      const insert =
        r === 0 ? this.randomBytes(k) : r === 1 ? bytes.slice(from, from + k) : Uint8Array.from({ length: k }, () => this.pick([0xc0, 0xc1, 0xff, 0xdd, 0xdf, 0xc6, 0xd4, 0x7f, 0x80]));
      out = new Uint8Array(len + insert.length);
      out.set(bytes.subarray(0, at));
      out.set(insert, at);
      out.set(bytes.subarray(at), at + insert.length);
    } else if (kind === 'mutate.delete') {
      const at = this.below(len);
      const k = 1 + this.below(Math.min(8, len - at));
      out = new Uint8Array(len - k);
      out.set(bytes.subarray(0, at));
      out.set(bytes.subarray(at + k), at);
    } else out = bytes.slice(0, this.below(len));
    return { message: out, syscall };
  }

  /** Arguments of one call sent as another's, one argument taken from another call, or the arguments reordered. */
  private swapped(): { message: Uint8Array; syscall: SyscallName } {
    const a = this.validRequest();
    const b = this.validRequest();
    const r = this.below(3);
    let args: unknown[];
    if (r === 0) args = b.args;
    else if (r === 1) {
      args = [...a.args];
      const i = this.below(Math.max(1, args.length));
      args[i] = b.args[this.below(Math.max(1, b.args.length))];
      if (args[i] === undefined) args.length = i; // b had no arguments: a loses this one
    } else args = [...a.args].reverse();
    return { message: encodeRequest(a.id, SYSCALLS[a.syscall].no, args), syscall: a.syscall };
  }

  // ---- values from schemas ----

  /** Valid arguments for `syscall`. */
  private argsFor(syscall: SyscallName): unknown[] {
    this.syscall = syscall;
    if (syscall === 'socket' && this.handleMode === 'mixed' && this.chance(0.6)) return [...this.pick(SOCKETS)];
    return this.value(SYSCALLS[syscall].args as TSchema) as unknown[];
  }

  /** A value that fits `schema`, biased toward edges and toward values the kernel gives meaning to. */
  private value(schema: TSchema, key?: string): unknown {
    const name = (schema.title as string | undefined) ?? key;
    switch (schema[Kind]) {
      case 'Tuple':
        return ((schema.items ?? []) as TSchema[]).map((s) => this.value(s));
      case 'Array': {
        const min = schema.minItems ?? 0;
        const max = Math.min(schema.maxItems ?? 64, 4096);
        const r = this.below(10);
        const n = r < 6 ? Math.min(max, min + this.below(4)) : r < 8 ? min : r < 9 ? max : this.between(min, max);
        return Array.from({ length: n }, () => this.value(schema.items as TSchema));
      }
      case 'Object': {
        const required = new Set<string>((schema.required as string[] | undefined) ?? []);
        const out: Record<string, unknown> = {};
        for (const [k, s] of Object.entries(schema.properties as Record<string, TSchema>)) {
          if (required.has(k) || this.chance(0.5)) out[k] = this.value(s, k);
        }
        if (name === 'sockaddr') {
          // Often one of its own endpoints, so data actually flows and the receive paths have something to take.
          const [r, p] = [this.below(100), this.u32()];
          const ports = this.ledger.ports;
          if (r < 40 && ports.length > 0) return { addr: '127.0.0.1', port: ports[p % ports.length] };
        }
        return out;
      }
      case 'Union':
        return this.value(this.pick(schema.anyOf as TSchema[]), key);
      case 'Literal':
        return schema.const;
      case 'Null':
        return null;
      case 'Boolean':
        return this.chance(0.5);
      case 'Integer':
      case 'Number':
        return this.integer(schema, name);
      case 'String':
        return this.string(schema, name);
      case 'Uint8Array':
        return this.bytes();
      case 'Unknown':
        return name === 'handle' ? this.handle() : this.garbage(2);
      default:
        return this.garbage(2);
    }
  }

  private integer(schema: TSchema, name: string | undefined): number {
    const min: number = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : Number.MIN_SAFE_INTEGER);
    const max: number = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - 1 : Number.MAX_SAFE_INTEGER);
    const inRange = (x: number) => x >= min && x <= max;
    const dict = (name === 'port' ? [...this.ports, ...this.ledger.ports] : (INT_DICT[`${this.syscall}.${name}`] ?? INT_DICT[name ?? ''] ?? [])).filter(inRange);
    const r = this.below(100);
    if (r < 60 && dict.length > 0) return this.pick(dict);
    if (r < 90) {
      const edges = [min, min + 1, -1, 0, 1, 2, max - 1, max, 0x7fffffff, -0x80000000, 0x7fff, 0x8000, 0xffff, 0x10000, 0xff, 0x100].filter(inRange);
      return this.pick(edges);
    }
    if (r < 95) return Math.max(min, Math.min(max, this.below(65)));
    return this.between(min, max);
  }

  private string(schema: TSchema, name: string | undefined): string {
    const minLength: number = schema.minLength ?? 0;
    const maxLength: number = schema.maxLength ?? 256;
    const pattern = schema.pattern as string | undefined;
    const re = pattern === undefined ? undefined : (this.patterns.get(pattern) ?? this.patterns.set(pattern, new RegExp(pattern, 'u')).get(pattern)!);
    const fits = (s: string) => s.length >= minLength && s.length <= maxLength && (!re || re.test(s));
    const dict = (name === 'addr' ? ADDRS : name === 'domain' ? this.domains : STRINGS).filter(fits);
    const r = this.below(100);
    if (re) {
      // A pattern cannot be generated from in general; the one the ABI has is a dotted quad.
      const quad = Array.from({ length: 4 }, () => (this.chance(0.5) ? this.pick([0, 1, 127, 255]) : this.below(256))).join('.');
      if (r >= 60 && fits(quad)) return quad;
      return dict.length > 0 ? this.pick(dict) : quad;
    }
    if (r < 50 && dict.length > 0) return this.pick(dict);
    const hi = Math.min(maxLength, 128);
    const n = this.pick([minLength, hi, Math.min(hi, minLength + 1), this.between(minLength, Math.max(minLength, hi))]);
    let s = '';
    for (let i = 0; i < n; i++) s += CHARS[this.below(CHARS.length)];
    return s;
  }

  /** Data for sendto: mostly small, sometimes at the UDP and MTU edges, rarely near the frame limit. */
  private bytes(): Uint8Array {
    const r = this.below(100);
    const n =
      r < 40
        ? this.below(65)
        : r < 91
          ? this.pick([0, 1, 8, 20, 28, 64, 512, 1472, 1473, 4096])
          : r < 99
            ? this.pick([UDP_MAX_PAYLOAD, UDP_MAX_PAYLOAD + 1, 65536])
            : this.pick([262144, 262145, MAX_FRAME_BYTES - 128]);
    const fill = this.below(3);
    if (n > 4096 || fill === 0) return pattern(n);
    const b = this.randomBytes(n);
    // An ICMP echo request header, so ping sockets have something they accept.
    if (fill === 1 && n >= 8) b.set([8, 0, 0, 0], 0);
    return b;
  }

  /** A value that does not fit `schema` because exactly one thing in it is past a bound or of a wrong kind. */
  private invalid(schema: TSchema): unknown {
    switch (schema[Kind]) {
      case 'Tuple': {
        const items = (schema.items ?? []) as TSchema[];
        const values = items.map((s) => this.value(s));
        const violable = items.map((s, i) => [s, i] as const).filter(([s]) => canViolate(s));
        if (violable.length === 0 || this.below(8) === 0) {
          // Arity: one argument missing, or one too many.
          return values.length > 0 && this.chance(0.5) ? values.slice(0, -1) : [...values, this.garbage(1)];
        }
        const [s, i] = violable[this.below(violable.length)]!;
        values[i] = this.invalid(s);
        return values;
      }
      case 'Array': {
        const max = schema.maxItems as number | undefined;
        const items = schema.items as TSchema;
        if (max !== undefined && (!canViolate(items) || this.chance(0.3))) return Array.from({ length: max + 1 }, () => this.value(items));
        if (!canViolate(items)) return 'not an array';
        const values = this.value(schema) as unknown[];
        values[this.below(values.length + 1)] = this.invalid(items);
        return values;
      }
      case 'Object': {
        const value = this.value(schema) as Record<string, unknown>;
        const props = Object.entries(schema.properties as Record<string, TSchema>);
        const r = this.below(4);
        if (r === 0 && schema.additionalProperties === false) return { ...value, [this.pick(['extra', 'toString', 'constructor'])]: 1 };
        const required = (schema.required as string[] | undefined) ?? [];
        if (r === 1 && required.length > 0) {
          const { [this.pick(required)]: _gone, ...rest } = value;
          return rest;
        }
        const [k, s] = props[this.below(props.length)]!;
        return { ...value, [k]: this.invalid(s) };
      }
      case 'Union':
        return this.invalid(this.pick(schema.anyOf as TSchema[]));
      case 'Literal':
        return typeof schema.const === 'number' ? schema.const + 1 : `${String(schema.const)}!`;
      case 'Null':
        return 0;
      case 'Integer':
      case 'Number': {
        const min = schema.minimum as number | undefined;
        const max = schema.maximum as number | undefined;
        const out = [
          ...(max !== undefined ? [max + 1, max + 2, 2 ** 31, 2 ** 32, 2 ** 53] : []),
          ...(min !== undefined ? [min - 1, -1, -(2 ** 31) - 1, -(2 ** 32)] : []),
          ...(schema[Kind] === 'Integer' ? [0.5] : []),
        ].filter((x) => (max !== undefined && x > max) || (min !== undefined && x < min) || !Number.isInteger(x));
        return out.length > 0 ? this.pick(out) : 'not a number';
      }
      case 'String': {
        const maxLength = schema.maxLength as number | undefined;
        const minLength = (schema.minLength as number | undefined) ?? 0;
        const out: string[] = [];
        if (maxLength !== undefined) out.push('a'.repeat(maxLength + 1), '1'.repeat(maxLength + 1 + this.below(64)));
        if (minLength > 0) out.push('a'.repeat(minLength - 1));
        if (schema.pattern !== undefined) out.push('256.0.0.1', '1.2.3', '01.2.3.4', ' 127.0.0.1', '127.0.0.1\n', '1.2.3.4.5', 'localhost', '127.0.0.-1', '');
        return out.length > 0 ? this.pick(out) : 0;
      }
      case 'Uint8Array':
        return this.pick<unknown>(['bytes', [1, 2, 3], null]);
      default:
        return this.garbage(1);
    }
  }

  // ---- handles ----

  /**
   * A handle for a request. In valid requests ('mixed') mostly one of the
   * domain's own, sometimes a stale, foreign or forged one; in the handle
   * kinds always the attack. Always three draws, whatever the ledger holds.
   */
  private handle(): unknown {
    const r = this.u32() % 100;
    const a = this.u32();
    const b = this.u32();
    const mode = this.handleMode !== 'mixed' ? this.handleMode : r < 75 ? 'own' : r < 85 ? 'stale' : r < 92 ? 'foreign' : 'forged';
    const live = this.ledger.live;
    switch (mode) {
      case 'own':
        return live.length > 0 ? live[a % live.length] : forged(a, b);
      case 'forged':
        return forged(a, b);
      case 'nearValid':
        return this.notOwn(nearValid(live.length > 0 ? live[a % live.length]! : SLOTS + (a % 64), b));
      case 'stale': {
        const stale = this.ledger.stale;
        if (stale.length > 0) return stale[a % stale.length];
        // Nothing closed yet: an earlier generation of an own slot, the handle it had before.
        return this.notOwn(live.length > 0 ? Math.max(0, live[a % live.length]! - SLOTS) : SLOTS + (a % 64));
      }
      case 'foreign': {
        const foreign = this.ledger.foreign;
        if (foreign.length > 0 && a % 2 === 0) return this.notOwn(foreign[b % foreign.length]!);
        // Another domain's first handles: generation 1 to 3 of its first slots.
        return this.notOwn((1 + (b % 3)) * SLOTS + ((b >>> 8) % 16));
      }
    }
  }

  /** Moves an integer handle a generation on until it is none of the domain's own (a forgery must be one). */
  private notOwn(h: unknown): unknown {
    if (typeof h !== 'number' || !Number.isSafeInteger(h)) return h;
    let x = h;
    for (let i = 0; i < 64 && this.ledger.owns(x); i++) x += SLOTS;
    return x;
  }

  // ---- garbage ----

  private garbageList(n: number, depth: number): unknown[] {
    return Array.from({ length: n }, () => this.garbage(depth));
  }

  /** Any value at all, nested up to `depth`; `hostile` adds keys and extension types that trip careless decoders. */
  private garbage(depth: number, hostile = false): unknown {
    const r = this.below(depth > 0 ? 14 : 9);
    switch (r) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1, 0x7f, 0x80, 0xff, 0xffff, 0xffffffff, 2 ** 53, -(2 ** 31), -(2 ** 63)]);
      case 3:
        return this.badNumber();
      case 4:
        return this.pick(STRINGS);
      case 5:
        return this.randomBytes(this.below(33));
      case 6:
        return this.u32();
      case 7:
        return hostile ? this.extension() : undefined;
      case 8:
        return hostile ? this.pick(HOSTILE_KEYS) : '';
      case 9:
      case 10:
        return this.garbageList(this.below(5), depth - 1);
      case 11:
      case 12: {
        const keys = hostile ? HOSTILE_KEYS : ['a', 'addr', 'port', 'handle', '0'];
        return new EntryMap(Array.from({ length: this.below(5) }, () => [this.pick(keys), this.garbage(depth - 1, hostile)]));
      }
      default:
        return hostile ? this.pick([this.deep(20 + this.below(200)), new EntryMap([['port', 80], ['port', 70000]])]) : this.garbageList(2, depth - 1);
    }
  }

  /** Raw extension values: timestamps, msgpackr's undefined, its typed arrays, and types no decoder knows. */
  private extension(): RawMsgpack {
    const forms = [
      [0xd6, 0xff, ...be32(this.u32())], // timestamp 32
      [0xd7, 0xff, ...this.randomBytes(8)], // timestamp 64
      [0xc7, 12, 0xff, ...this.randomBytes(12)], // timestamp 96
      [0xc7, 3, 0xff, 1, 2, 3], // a timestamp of a length none has
      [0xd4, 0x00, 0x00], // undefined
      [0xd4, 0x01, 0x01], // an unknown type
      [0xc7, 3, 0x74, 0x01, 0x02, 0x03], // msgpackr's typed arrays
      [0xd4, 0x65, 0xc0], // msgpackr's errors
      [0xc8, 0xff, 0xff, 0x42, 0x00], // ext16 claiming more than there is
      [0xd5, 0x69, 0x00, 0x01], // msgpackr's references
    ];
    return new RawMsgpack(Uint8Array.from(this.pick(forms)));
  }

  /** Arrays nested `depth` deep: a decoder that recurses may run out of stack (it must throw, not crash). */
  private deep(depth: number): RawMsgpack {
    const b = new Uint8Array(depth + 1).fill(0x91);
    b[depth] = 0xc0;
    return new RawMsgpack(b);
  }

  /** Object keys in another order (decoders must not care). */
  private reorder(v: unknown): unknown {
    const reverse = this.chance(0.5); // drawn for every value, object or not
    if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return v;
    const entries = Object.entries(v as Record<string, unknown>);
    if (reverse) entries.reverse();
    return new EntryMap(entries);
  }
}

// ---- helpers ----------------------------------------------------------------

let patternBytes: Uint8Array | undefined;
/** n bytes counting up, copied from one buffer made once (large buffers are common, and filling each is slow). */
function pattern(n: number): Uint8Array {
  if (!patternBytes) {
    patternBytes = new Uint8Array(MAX_FRAME_BYTES);
    for (let i = 0; i < patternBytes.length; i++) patternBytes[i] = i & 0xff;
  }
  return patternBytes.slice(0, n);
}

function forged(a: number, b: number): unknown {
  switch (b % 8) {
    case 0:
      return a; // any 32-bit number
    case 1:
      return -(a % 2 ** 31) - 1;
    case 2:
      return a % SLOTS; // a slot with generation 0, which no handle has
    case 3:
      return (a % (GENERATIONS * 2)) * SLOTS + ((b >>> 3) % SLOTS);
    case 4:
      return SLOTS + (a % 4096) + 0.5;
    case 5:
      return [2 ** 53 - 1, 2 ** 53, -(2 ** 53), NaN, Infinity, -Infinity, 1e300, 5e-324, 2 ** 32, 2 ** 32 + SLOTS, 2 ** 31][a % 11];
    case 6:
      return ['1024', '', null, true, false, [SLOTS], { handle: SLOTS }, new Uint8Array([4, 0])][a % 8];
    default:
      return a % 2 ** 16;
  }
}

/** An own handle with its slot or generation moved, or past the generation limit. */
function nearValid(h: number, b: number): number {
  const slot = h % SLOTS;
  const gen = Math.floor(h / SLOTS);
  const variants = [
    (gen + 1) * SLOTS + slot,
    Math.max(0, gen - 1) * SLOTS + slot,
    gen * SLOTS + ((slot + 1) % SLOTS),
    gen * SLOTS + ((slot + SLOTS - 1) % SLOTS),
    (gen + GENERATIONS) * SLOTS + slot, // the generation wrapped
    (GENERATIONS - 1) * SLOTS + slot,
    h + 2 ** 32,
    h - 2 ** 32,
    -h,
    slot,
    h * SLOTS,
  ];
  return variants[b % variants.length]!;
}

/** Paths (argument index, then keys) to the leaves of `value` that its schema constrains (not handles). */
function leafPaths(schema: TSchema, value: unknown, path: (string | number)[] = []): [(string | number)[], TSchema][] {
  switch (schema[Kind]) {
    case 'Tuple':
      return ((schema.items ?? []) as TSchema[]).flatMap((s, i) => leafPaths(s, (value as unknown[])[i], [...path, i]));
    case 'Array':
      return (value as unknown[]).flatMap((v, i) => leafPaths(schema.items as TSchema, v, [...path, i]));
    case 'Object':
      return Object.entries(schema.properties as Record<string, TSchema>).flatMap(([k, s]) =>
        k in (value as object) ? leafPaths(s, (value as Record<string, unknown>)[k], [...path, k]) : [],
      );
    case 'Union': {
      const branch = (schema.anyOf as TSchema[]).find((s) => (s[Kind] === 'Null') === (value === null));
      return branch ? leafPaths(branch, value, path) : [];
    }
    case 'Unknown':
      return [];
    default:
      return [[path, schema]];
  }
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy: any = Array.isArray(root) ? [...root] : { ...(root as object) };
  copy[head!] = setAt(copy[head!], rest, value);
  return copy;
}

/** Whether a value can fail `schema` (anything but Unknown; a tuple at least by its length). */
function canViolate(schema: TSchema): boolean {
  return schema[Kind] !== 'Unknown';
}

function sameKind(kind: string, v: unknown): boolean {
  if (v instanceof RawMsgpack) return kind === 'Integer' || kind === 'Number'; // -0
  switch (kind) {
    case 'Integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'Number':
      return typeof v === 'number';
    case 'String':
      return typeof v === 'string';
    case 'Uint8Array':
      return v instanceof Uint8Array;
    case 'Null':
      return v === null;
    case 'Boolean':
      return typeof v === 'boolean';
    case 'Array':
    case 'Tuple':
      return Array.isArray(v);
    case 'Object':
      return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
    default:
      return false;
  }
}
