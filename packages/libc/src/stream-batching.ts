/**
 * Fewer hand-overs between the domain's thread and the kernel's on its own
 * stream sockets, as libc learns what they are from the calls it makes (a
 * SOCK_STREAM socket() or an accept()):
 *
 * - Sends go into the channel's send ring (see @moat/abi's send-ring)
 *   instead of a call: a send with no flags on a blocking stream, once a
 *   send on it by call took everything (so the handle was valid, connected
 *   and writable), until anything that could change that (close, shutdown,
 *   O_NONBLOCK, SO_SNDTIMEO) or the kernel's stopping the ring (a queued send
 *   failed: the handle's next send or recv reports the error, and every handle goes
 *   by call again until a call proves it). A queued send returns once its
 *   bytes are in the ring, as a send returns once they are in the socket's
 *   buffer; every call that names the handle waits until the kernel has
 *   taken them, so the kernel sees the domain's operations on a socket in
 *   the order it made them.
 * - Recvs ask for read-ahead (MSG_READAHEAD): the kernel may hand over more
 *   of the stream than asked, which the next recvs (and MSG_PEEK, and poll's
 *   POLLIN) are served from here, in order, until it is used up. A close
 *   that drops some of it unread resets the peer, as a close with data
 *   unread in the kernel does (SO_LINGER 1 just before it). A recv's
 *   reply is decoded in the reply slot and copied out once: the answer as
 *   one array, what was read ahead in arrays of READAHEAD_PIECE_BYTES.
 */
import { F_SETFL, MSG_PEEK, MSG_READAHEAD, O_NONBLOCK, ownCopy, POLLIN, SHUT_RD, SHUT_WR, SO_LINGER, SO_SNDTIMEO, SOCK_STREAM, SOL_SOCKET, type RecvfromResult } from '@moat/abi/core';
import type { Channel } from './channel.js';

/**
 * The most read-ahead one array of its own holds. A recv's reply carries up
 * to 512 KiB; copied whole, every reply took fresh pages from the OS (a
 * block that large is mapped for it and unmapped when the collector frees
 * it), and the receiving domain spent a third of its time zeroing and
 * faulting them in. Below glibc's mmap threshold (128 KiB), freed blocks
 * are reused.
 */
export const READAHEAD_PIECE_BYTES = 64 * 1024;

const byChannel = new WeakMap<Channel, StreamBatching>();

/** The one StreamBatching of a channel, shared by its blocking and its promise API. */
export function streamBatchingOf(channel: Channel): StreamBatching {
  let b = byChannel.get(channel);
  if (!b) byChannel.set(channel, (b = new StreamBatching(channel)));
  return b;
}

/** Read-ahead bytes kept for a handle, and the peer address its recvfrom reports. */
interface Kept {
  chunks: Uint8Array[];
  addr: string;
  port: number;
}

export class StreamBatching {
  /** Stream sockets of this domain's own making (socket or accept). */
  private readonly streams = new Set<number>();
  /** Those whose sends may be queued: a send by call took everything since they were last in doubt. */
  private readonly proven = new Set<number>();
  private readonly kept = new Map<number, Kept>();

  constructor(private readonly channel: Channel) {}

  /**
   * Whether any call has to do with batching now: sends are queued or bytes
   * kept. Besides, the calls that teach or use it always have
   * (`alwaysInvolved`); the others (a null call, bind, stats...) go straight
   * to the channel.
   */
  get busy(): boolean {
    return this.kept.size > 0 || this.channel.queuedAny();
  }

  /**
   * Before call `name` with `args` (the syscall's own): it waits for the
   * records queued on the handles it names; what it may change is in doubt.
   */
  before(name: string, args: readonly unknown[]): void {
    const handles = handlesOf(name, args);
    if (handles.length === 0) return;
    this.channel.awaitQueued(handles);
    const h = handles[0]!;
    if (name === 'close' || (name === 'shutdown' && args[1] !== SHUT_WR)) this.kept.delete(h); // SHUT_RD: what is kept is gone too
    const inDoubt =
      name === 'close' ||
      (name === 'shutdown' && args[1] !== SHUT_RD) ||
      (name === 'fcntl' && args[1] === F_SETFL && ((args[2] as number) & O_NONBLOCK) !== 0) ||
      (name === 'setsockopt' && args[1] === SOL_SOCKET && args[2] === SO_SNDTIMEO && (args[3] as number) > 0);
    if (!inDoubt) return;
    this.proven.delete(h);
    if (name === 'close') this.streams.delete(h);
  }

  /**
   * The setsockopt to make before call `name` with `args`, if any: a close
   * of a handle with bytes kept here drops data the program never read,
   * which the kernel no longer counts as unread, so SO_LINGER 1 makes the
   * close reset the peer as Linux's close with data unread does. Asked
   * before `before`, which forgets what is kept.
   */
  lingerBeforeClose(name: string, args: readonly unknown[]): unknown[] | undefined {
    return name === 'close' && this.kept.has(args[0] as number) ? [args[0], SOL_SOCKET, SO_LINGER, 1] : undefined;
  }

  /**
   * The arguments to call with: a poll of handles with bytes kept here does
   * not wait, and a blocking recv on an own stream asks for read-ahead (never
   * a promise recv: another of them may be in flight on the handle, and its
   * bytes would come after what was read ahead).
   */
  callArgs(name: string, args: unknown[], blocking: boolean): unknown[] {
    if (name === 'poll') return this.pollArgs(args);
    if (!blocking || (name !== 'recv' && name !== 'recvfrom')) return args;
    const flags = args[2] as number;
    if (!this.streams.has(args[0] as number) || flags & MSG_PEEK) return args;
    return [args[0], args[1], flags | MSG_READAHEAD];
  }

  /**
   * The syscall's result `raw` (a recv's as `received` made it) as the
   * program is to see it: a poll has POLLIN for what is kept; and what the
   * call teaches about its sockets is learnt.
   */
  settle(name: string, args: readonly unknown[], raw: unknown): unknown {
    this.after(name, args, raw);
    return name === 'poll' ? this.pollWith(args, raw as number[]) : raw;
  }

  /** What a blocking call `name` hands its result to (Channel.callSync's `adopt`): `received`, for a recv. */
  adopter(name: string, args: readonly unknown[]): ((raw: unknown) => unknown) | undefined {
    return name === 'recv' || name === 'recvfrom' ? (raw) => this.received(name, args, raw) : undefined;
  }

  /** After call `name` returned `raw` (the syscall's result): what it teaches. */
  private after(name: string, args: readonly unknown[], raw: unknown): void {
    // SOCK_STREAM with no flags: a SOCK_NONBLOCK socket's sends are not blocking ones.
    if (name === 'socket' && args[1] === SOCK_STREAM) this.streams.add(raw as number);
    else if (name === 'accept') this.streams.add((raw as number[])[0]!);
    else if (isPlainSend(name, args) && this.streams.has(args[0] as number) && raw === (args[1] as Uint8Array).length) this.proven.add(args[0] as number);
  }

  /**
   * A recv's result as the program sees it, in memory of its own (`raw`'s
   * data may be a view of the reply slot): what was read ahead beyond the
   * call's answer is kept for the next recvs.
   */
  received(name: string, args: readonly unknown[], raw: unknown): unknown {
    if (name !== 'recv' && name !== 'recvfrom') return raw;
    const [data, addr, port, flags, answered] = raw as RecvfromResult;
    const shared = data.buffer instanceof SharedArrayBuffer;
    if (answered === undefined || answered >= data.length) return shared ? [ownCopy(data), addr, port, flags] : raw;
    const h = args[0] as number;
    let kept = this.kept.get(h);
    if (!kept) this.kept.set(h, (kept = { chunks: [], addr, port }));
    if (!shared) kept.chunks.push(data.subarray(answered));
    else for (let at = answered; at < data.length; at += READAHEAD_PIECE_BYTES) kept.chunks.push(ownCopy(data.subarray(at, at + READAHEAD_PIECE_BYTES)));
    return [shared ? ownCopy(data.subarray(0, answered)) : data.subarray(0, answered), addr, port, flags];
  }

  /**
   * Queues the send `args` ([handle, data, flags, addr]) as far as it may
   * go by the ring; returns the bytes queued (0: it goes by call, whole).
   */
  queue(name: string, args: readonly unknown[]): number {
    if (this.proven.size === 0 || !isPlainSend(name, args)) return 0;
    if (this.channel.ringStopped() !== 0) this.proven.clear();
    if (!this.proven.has(args[0] as number)) return 0;
    return this.channel.queueSend(args[0] as number, args[1] as Uint8Array);
  }

  /** A recv `args` ([handle, maxlen, flags]) answered from what is kept, as the kernel would have answered it; undefined: none kept. */
  serveRecv(name: string, args: readonly unknown[]): RecvfromResult | undefined {
    if ((name !== 'recv' && name !== 'recvfrom') || this.kept.size === 0) return undefined;
    const h = args[0] as number;
    const kept = this.kept.get(h);
    if (!kept) return undefined;
    const maxlen = args[1] as number;
    const first = kept.chunks[0]!;
    if (maxlen === 0) return [first.subarray(0, 0), kept.addr, kept.port, 0];
    if ((args[2] as number) & MSG_PEEK) return [first.slice(0, maxlen), kept.addr, kept.port, 0];
    const data = first.subarray(0, maxlen);
    if (data.length === first.length) kept.chunks.shift();
    else kept.chunks[0] = first.subarray(data.length);
    if (kept.chunks.length === 0) this.kept.delete(h);
    return [data, kept.addr, kept.port, 0];
  }

  /** Poll's answer, with POLLIN for the handles it asked about that have bytes kept here. */
  private pollWith(args: readonly unknown[], revents: number[]): number[] {
    if (this.kept.size === 0) return revents;
    const fds = args[0] as [number, number][];
    return revents.map((r, i) => (this.kept.has(fds[i]![0]) && fds[i]![1] & POLLIN ? r | POLLIN : r));
  }

  /** A poll of handles with bytes kept here does not wait: they are readable now. */
  private pollArgs(args: unknown[]): unknown[] {
    if (this.kept.size === 0) return args;
    const fds = args[0] as [number, number][];
    return fds.some(([h, events]) => this.kept.has(h) && events & POLLIN) ? [fds, 0] : args;
  }
}

/** The calls that teach batching about a socket or use it. */
/** Whether call `name` teaches or uses batching whatever the state (asked once per call of the API, when it is made). */
export const alwaysInvolved = (name: string): boolean => INVOLVED.has(name);

const INVOLVED = new Set(['socket', 'accept', 'send', 'sendto', 'recv', 'recvfrom', 'poll', 'close', 'shutdown', 'fcntl', 'setsockopt']);

/** A send or sendto with no flags and no address: what a record is. */
const isPlainSend = (name: string, args: readonly unknown[]) => (name === 'send' || name === 'sendto') && args[2] === 0 && args[3] == null && args[1] instanceof Uint8Array;

/** The handles a call's arguments name (poll's several; none for socket, stats and null). */
function handlesOf(name: string, args: readonly unknown[]): number[] {
  if (name === 'poll') return Array.isArray(args[0]) ? (args[0] as unknown[][]).map((fd) => fd[0] as number) : [];
  if (name === 'socket' || name === 'stats' || name === 'null') return [];
  return typeof args[0] === 'number' ? [args[0]] : [];
}
