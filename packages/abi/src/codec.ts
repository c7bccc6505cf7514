/**
 * The frame codec. A request is the msgpack array [callId, sysno, ...args];
 * a reply is [callId, errno, result]. callId 0 is reserved for replies to
 * frames whose id could not be read.
 *
 * The encoders return a Uint8Array that owns exactly its bytes. msgpackr packs
 * into a scratch buffer it reuses and returns a view of it; posting that view
 * would clone (or transfer) the whole scratch buffer, earlier frames and all,
 * so one domain could read bytes of another's replies. Note that a Node
 * Buffer's slice() is a view too: the copy must be `new Uint8Array(view)`.
 */
// The pack subpath is msgpackr's own pure-JS build (Packr packs and unpacks). Its main entry in Node also loads
// msgpackr-extract, a native addon that only speeds up unpacking long strings (no frame here has any) and cost each
// worker about 13 ms of its start-up to load.
import { Packr } from 'msgpackr/pack';
import { copyBytes } from './copy.js';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

/**
 * The shared words of a worker domain's channel (its `signal`), as Int32
 * indexes (eight words before the slot), and its reply slot. The kernel bumps WAKE after each reply. A
 * domain about to block for call N writes N into WAITING; the kernel, when
 * it answers call N with a frame that fits the slot, takes N back
 * (compare-and-exchange to 0), writes the frame into the slot from byte
 * REPLY_START (0 to 7) and sets REPLY_LENGTH to where it ends, instead of
 * posting it: the domain copies the slot's first REPLY_LENGTH bytes out,
 * decodes from REPLY_START and clears REPLY_LENGTH. The slot is the domain's own memory; the kernel only writes
 * it, and never decodes anything from it. A signal of 4 bytes has no slot:
 * every reply is posted.
 */
export const SIGNAL_WAKE = 0;
export const SIGNAL_WAITING = 1;
export const SIGNAL_REPLY_LENGTH = 2;
/**
 * Where in the slot the reply frame begins: 0, unless the frame was written
 * around socket data the kernel had read into the slot first (replyBytesAt),
 * where it begins as far before that data as its header takes.
 */
export const SIGNAL_REPLY_START = 5;
/**
 * Lockstep: the ordinal (counting from 1, every message the domain posts on
 * its channel) of the frame the domain is about to block on, written before
 * the frame is posted, so the kernel knows on receipt that the domain now
 * waits (see RestNotice for a domain that waits on promises).
 */
export const SIGNAL_BLOCKING = 3;
/**
 * 1 while the domain sleeps in Atomics.wait on WAKE (set before it sleeps,
 * after it looked at WAKE): the kernel bumps WAKE after every reply but
 * calls Atomics.notify, which costs as much again, only when this is set.
 * A domain that set it after the kernel looked finds WAKE changed and does
 * not sleep, so no wake is lost.
 */
export const SIGNAL_SLEEPING = 4;
export const REPLY_SLOT_OFFSET = 32;
/** A recv of 64 KiB and its read-ahead (READAHEAD_MAX_BYTES) fit, with the frame's header. */
export const REPLY_SLOT_BYTES = 512 * 1024 + 256;
/**
 * Lockstep: the kernel's virtual time in ms (a Float64), which the kernel
 * writes before it answers the domain and the domain's clocks read
 * (performance.now, Date), so that a program that looks at the time sees
 * the same times in every run.
 */
export const VIRTUAL_CLOCK_OFFSET = REPLY_SLOT_OFFSET + REPLY_SLOT_BYTES;
/** Bytes of a channel's signal with its reply slot and its virtual clock. */
export const CHANNEL_SIGNAL_BYTES = VIRTUAL_CLOCK_OFFSET + 8;

/**
 * Lockstep: what a domain whose event loop has nothing left to do but wait
 * for its asynchronous calls posts on its channel (a message, not a frame):
 * how many messages it has posted and how many replies it has taken so far.
 * The kernel counts it at rest only if both match its own counts, so a
 * notice overtaken by a reply or a request says nothing.
 */
export interface RestNotice {
  rest: { posted: number; taken: number };
}

export function isRestNotice(message: unknown): message is RestNotice {
  const rest = (message as RestNotice | null)?.rest;
  return typeof message === 'object' && message !== null && !ArrayBuffer.isView(message) && typeof rest === 'object' && rest !== null && Number.isInteger(rest.posted) && Number.isInteger(rest.taken);
}

/**
 * Lockstep: a line the domain logged, posted on its channel too (a message,
 * not a frame), so that a domain started after that line (a scenario's
 * startAfter) joins at the same point of the run every time.
 */
export interface LogNotice {
  log: string;
}

export function isLogNotice(message: unknown): message is LogNotice {
  return typeof message === 'object' && message !== null && !ArrayBuffer.isView(message) && typeof (message as LogNotice).log === 'string';
}

/**
 * Frames of at most this many bytes are posted by copy, larger ones by
 * transferring their buffer. A transfer detaches the buffer and makes a new
 * one on the other side, which costs more than copying a small frame: a
 * 16-byte frame's round trip between two workers took 32 µs transferred and
 * 26 µs copied, 8 KiB 35 and 33, 64 KiB 46 and 66 (this VM, Node 20).
 */
export const COPY_FRAME_MAX_BYTES = 8192;

/** What to transfer with a frame when posting it (see COPY_FRAME_MAX_BYTES): the frame must own its whole buffer. */
export function transferOf(frame: Uint8Array): ArrayBuffer[] {
  return frame.byteLength > COPY_FRAME_MAX_BYTES ? [frame.buffer as ArrayBuffer] : [];
}

/** The end of a channel frames are posted on (a MessagePort). */
export interface FramePort {
  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void;
}

/**
 * V8 keeps the bytes of a typed array of up to this many in its heap, with no
 * buffer of their own; posting one (or reading its `.buffer`) first moves them
 * to a buffer of their own, a malloc per frame.
 */
const IN_HEAP_MAX_BYTES = 64;
/** One off-heap buffer per length up to IN_HEAP_MAX_BYTES, that small frames are posted from (postMessage copies at once). */
const postedFrom: (Uint8Array<ArrayBuffer> | undefined)[] = [];

/**
 * Posts a frame the caller owns: a small one copied from a reused buffer of
 * its length (so the frame itself never gets one: see IN_HEAP_MAX_BYTES),
 * a larger one as it is, its buffer transferred above COPY_FRAME_MAX_BYTES.
 * A frame posted from the reused buffer arrives as a frame of its own all the same.
 */
export function postFrame(port: FramePort, frame: Uint8Array): void {
  const n = frame.byteLength;
  if (n > IN_HEAP_MAX_BYTES || n === 0) return port.postMessage(frame, transferOf(frame));
  const from = (postedFrom[n] ??= new Uint8Array(new ArrayBuffer(n)));
  // A loop, not `set`: for a few bytes, done once per wake-up, `set` cost a null call's round trip about
  // 0.3 µs on each side (two bare workers: 0.7 µs a round trip; Moat, alternating: 0.6 µs).
  for (let i = 0; i < n; i++) from[i] = frame[i]!;
  port.postMessage(from);
}

/** Frames larger than this are refused before decoding. */
export const MAX_FRAME_BYTES = 1 << 20;
export const MAX_CALL_ID = 0xffffffff;
export const UNKNOWN_CALL_ID = 0;

/** An exact, owned request frame, safe to post with its buffer transferred. */
export function encodeRequest(callId: number, sysno: number, args: readonly unknown[]): Uint8Array<ArrayBuffer> {
  if (args.length === 0) return encodeNumbers(callId, sysno);
  if (args.length === 1 && typeof args[0] === 'number') return encodeNumbers(callId, sysno, args[0]);
  const value = [callId, sysno, ...args];
  return encodeExact(value) ?? new Uint8Array(packr.pack(value));
}

/** An exact, owned reply frame, safe to post with its buffer transferred. */
export function encodeReply(callId: number, errno: number, result?: unknown): Uint8Array<ArrayBuffer> {
  if (result === undefined || typeof result === 'number') return encodeNumbers(callId, errno, result);
  const value = result === undefined ? [callId, errno] : [callId, errno, result];
  return encodeExact(value) ?? new Uint8Array(packr.pack(value));
}

/**
 * Writes the reply frame encodeReply would make into `target` (a blocking
 * caller's reply slot), with no buffer of its own, from its start, or
 * around the data when it was read into the target already (see
 * replyBytesAt). Returns where it starts and ends, or undefined when it does
 * not fit or is not a data-path frame (then encodeReply it).
 */
export function encodeReplyInto(target: Uint8Array, callId: number, errno: number, result?: unknown): { start: number; end: number } | undefined {
  const value = result === undefined ? [callId, errno] : [callId, errno, result];
  const size = exactSize(value, 0);
  // Where its first byte array's bytes fall, at start 0; the frame moves on to where they already are (replyBytesAt).
  const at = size < 0 ? -1 : payloadOffset(value, 0);
  const placed = at < 0 ? -1 : placedAt(target, result);
  const start = placed >= at ? placed - at : 0;
  if (size < 0 || start + size > target.length) return undefined;
  return writeValue(target, start, value) === start + size ? { start, end: start + size } : undefined;
}

/** Where in `target` a result that begins with bytes viewing `target` has them, or -1. */
function placedAt(target: Uint8Array, result: unknown): number {
  const bytes = Array.isArray(result) ? result[0] : undefined;
  return bytes instanceof Uint8Array && bytes.buffer === target.buffer ? bytes.byteOffset - target.byteOffset : -1;
}

/**
 * Where encodeReplyInto puts the bytes of the successful reply to `callId`
 * whose result is an array of fewer than 16 items that begins with `length`
 * bytes (a recv's), for the kernel to read a stream's bytes straight there
 * first: the encoding then leaves them in place, and the frame starts at 0.
 */
export function replyBytesAt(callId: number, length: number): number {
  // [callId, 0, [bytes, ...]]: the two arrays' headers, the id, errno 0 (one byte), the bytes' header.
  return arrayHeaderBytes(3) + exactSize(callId, 1) + 1 + arrayHeaderBytes(4) + binHeaderBytes(length);
}

/** Offset in the encoding of `v` (which exactSize accepted) of its first byte array's bytes, or -1 for none. */
function payloadOffset(v: unknown, depth: number): number {
  if (v instanceof Uint8Array) return binHeaderBytes(v.length);
  if (!Array.isArray(v) || depth >= 4) return -1;
  let at = arrayHeaderBytes(v.length);
  for (const item of v) {
    const inner = payloadOffset(item, depth + 1);
    if (inner >= 0) return at + inner;
    at += exactSize(item, depth + 1);
  }
  return -1;
}

/**
 * The frames of the data path (a send's request, a recv's reply: numbers,
 * byte arrays, short strings, null, booleans, nested arrays) written straight into a buffer
 * of exactly their size: the data is copied once, where packr would copy it
 * into its scratch buffer and then again out of it. Anything else (strings,
 * objects) is undefined, for packr. Both write standard msgpack.
 */
function encodeExact(value: readonly unknown[]): Uint8Array<ArrayBuffer> | undefined {
  const size = exactSize(value, 0);
  if (size < 0) return undefined;
  const out = new Uint8Array(size);
  const end = writeValue(out, 0, value);
  return end === size ? out : undefined;
}

/** [a, b] or [a, b, c] (most replies, and requests such as a null call's), as encodeExact writes them, without making the array first. */
function encodeNumbers(a: number, b: number, c?: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(numbersSize(a, b, c));
  writeNumbers(out, a, b, c);
  return out;
}

/** The encoded size of [a, b] or [a, b, c]: at most 28 bytes. */
function numbersSize(a: number, b: number, c?: number): number {
  return 1 + exactSize(a, 1) + exactSize(b, 1) + (c === undefined ? 0 : exactSize(c, 1));
}

function writeNumbers(out: Uint8Array, a: number, b: number, c?: number): void {
  out[0] = c === undefined ? 0x92 : 0x93; // fixarray of 2 or 3
  const i = writeValue(out, writeValue(out, 1, a), b);
  if (c !== undefined) writeValue(out, i, c);
}

/** Posts [a, b] or [a, b, c] written straight into postFrame's reused buffer of its length: no frame of its own. */
function postNumbers(port: FramePort, a: number, b: number, c?: number): void {
  const n = numbersSize(a, b, c);
  const out = (postedFrom[n] ??= new Uint8Array(new ArrayBuffer(n)));
  writeNumbers(out, a, b, c);
  port.postMessage(out);
}

/**
 * Posts the request frame encodeRequest makes, as postFrame posts it. One of
 * numbers only (a null call's) is not made at all but written straight into
 * the buffer postFrame would copy it into: making and copying it cost a null
 * call's round trip about 0.9 µs, both sides together.
 */
export function postRequest(port: FramePort, callId: number, sysno: number, args: readonly unknown[]): void {
  if (args.length === 0) return postNumbers(port, callId, sysno);
  if (args.length === 1 && typeof args[0] === 'number') return postNumbers(port, callId, sysno, args[0]);
  postFrame(port, encodeRequest(callId, sysno, args));
}

/** Posts the reply frame encodeReply makes, as postRequest posts a request. */
export function postReply(port: FramePort, callId: number, errno: number, result?: unknown): void {
  if (result === undefined || typeof result === 'number') return postNumbers(port, callId, errno, result);
  postFrame(port, encodeReply(callId, errno, result));
}

/** Big-endian integer writes without a DataView (making one per frame cost as much as the rest of a small frame's encoding). */
function writeBE(out: Uint8Array, i: number, v: number, bytes: number): number {
  for (let k = bytes - 1; k >= 0; k--) {
    out[i + k] = v & 0xff;
    v = Math.floor(v / 256); // not >>: a uint32 above 2^31 must not turn negative
  }
  return i + bytes;
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function writeFloat64(out: Uint8Array, i: number, v: number): number {
  f64[0] = v;
  for (let k = 0; k < 8; k++) out[i + k] = f64Bytes[LITTLE_ENDIAN ? 7 - k : k]!;
  return i + 8;
}

/** Bytes of the header of a msgpack bin of `length` bytes (bin 8, 16 or 32). */
function binHeaderBytes(length: number): number {
  return length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
}

/** Bytes of the header of a msgpack array of `length` items (fixarray, array 16 or 32). */
function arrayHeaderBytes(length: number): number {
  return length < 16 ? 1 : length < 0x10000 ? 3 : 5;
}

/** Encoded size of `v`, or -1 when encodeExact does not handle it (or it nests too deep). */
function exactSize(v: unknown, depth: number): number {
  if (v === null || v === undefined || typeof v === 'boolean') return 1;
  if (typeof v === 'number') {
    // -0 is an integer here, written as 0, as msgpackr writes it.
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) return 9;
    if (v >= 0) return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : 5;
    return v >= -32 ? 1 : v >= -0x80 ? 2 : v >= -0x8000 ? 3 : 5;
  }
  if (v instanceof Uint8Array) return binHeaderBytes(v.length) + v.length;
  if (typeof v === 'string') {
    // Addresses and names: ASCII, short. Others go to packr.
    if (v.length > 255) return -1;
    for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) > 0x7f) return -1;
    return (v.length < 32 ? 1 : 2) + v.length;
  }
  if (Array.isArray(v) && depth < 4) {
    let n = arrayHeaderBytes(v.length);
    for (const item of v) {
      const m = exactSize(item, depth + 1);
      if (m < 0) return -1;
      n += m;
    }
    return n;
  }
  return -1;
}

/** Writes `v` (which exactSize accepted) at `i`; returns where it ends. */
function writeValue(out: Uint8Array, i: number, v: unknown): number {
  if (v === null || v === undefined) {
    out[i] = 0xc0;
    return i + 1;
  }
  if (typeof v === 'boolean') {
    out[i] = v ? 0xc3 : 0xc2;
    return i + 1;
  }
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) {
      out[i] = 0xcb;
      return writeFloat64(out, i + 1, v);
    }
    if (v >= 0) {
      if (v < 0x80) out[i++] = v;
      else if (v < 0x100) (out[i++] = 0xcc), (out[i++] = v);
      else if (v < 0x10000) (out[i] = 0xcd), (i = writeBE(out, i + 1, v, 2));
      else (out[i] = 0xce), (i = writeBE(out, i + 1, v, 4));
      return i;
    }
    // Two's complement in the field's width: `v + 2^bits` is the unsigned pattern.
    if (v >= -32) out[i++] = v & 0xff;
    else if (v >= -0x80) (out[i] = 0xd0), (out[i + 1] = v & 0xff), (i += 2);
    else if (v >= -0x8000) (out[i] = 0xd1), (i = writeBE(out, i + 1, v + 0x10000, 2));
    else (out[i] = 0xd2), (i = writeBE(out, i + 1, v + 0x100000000, 4));
    return i;
  }
  if (v instanceof Uint8Array) {
    const n = v.length;
    if (n < 0x100) (out[i] = 0xc4), (out[i + 1] = n), (i += 2);
    else if (n < 0x10000) (out[i] = 0xc5), (i = writeBE(out, i + 1, n, 2));
    else (out[i] = 0xc6), (i = writeBE(out, i + 1, n, 4));
    // Bytes the kernel already read into place (replyBytesAt) are left as they are.
    if (v.buffer !== out.buffer || v.byteOffset !== out.byteOffset + i) copyBytes(out, i, v);
    return i + n;
  }
  if (typeof v === 'string') {
    const n = v.length;
    if (n < 32) out[i++] = 0xa0 | n;
    else (out[i++] = 0xd9), (out[i++] = n);
    for (let j = 0; j < n; j++) out[i++] = v.charCodeAt(j);
    return i;
  }
  const a = v as readonly unknown[];
  if (a.length < 16) out[i++] = 0x90 | a.length;
  else if (a.length < 0x10000) (out[i] = 0xdc), (i = writeBE(out, i + 1, a.length, 2));
  else (out[i] = 0xdd), (i = writeBE(out, i + 1, a.length, 4));
  for (const item of a) i = writeValue(out, i, item);
  return i;
}

/**
 * Decodes any frame; throws on bytes that are not one msgpack value.
 *
 * Not `packr.unpack`: on bytes left after the first value it builds its
 * error message from JSON.stringify of the whole value decoded so far, which
 * for a crafted 1 MiB frame took 0.4 to 0.8 s of the kernel's only thread
 * (found by the syscall fuzzer). Reading the first value in sequential mode
 * gives its end without that, and the frame is refused in microseconds.
 */
export function decodeFrame(frame: Uint8Array): unknown {
  const simple = decodeSimple(frame);
  if (simple !== NOT_SIMPLE) return simple;
  let value: unknown;
  let end = -1;
  packr.unpackMultiple(frame, (v: unknown, _start?: number, stop?: number) => {
    value = v;
    end = stop ?? -1;
    return false; // the first value only: what follows is never decoded
  });
  if (end !== frame.length) throw new Error(`not one msgpack value: ${frame.length - end} bytes after it`);
  return value;
}

/** decodeSimple's answer for a frame it leaves to msgpackr. */
const NOT_SIMPLE = Symbol('not simple');

/**
 * The frames of the hot path (a reply's [id, errno], a request's integers
 * and bytes) decoded by hand, as msgpackr would decode them: integers up to
 * 32 bits, float64, nil, booleans, binary (as a view of the frame, as
 * msgpackr gives it), short ASCII strings, and arrays nested at most four
 * deep. Anything else, and any frame that ends early or has bytes after its
 * value, is NOT_SIMPLE and goes to msgpackr, which also makes the error.
 * msgpackr's sequential decoder costs a couple of microseconds per frame
 * even for [id, errno], on both sides of every call.
 */
function decodeSimple(frame: Uint8Array): unknown {
  // A Buffer's views are Buffers to msgpackr. Not Object.getPrototypeOf: it went to V8's runtime for every frame.
  if (frame.constructor !== Uint8Array) return NOT_SIMPLE;
  reading = frame;
  at = 0;
  const v = simpleValue(0);
  const whole = at === frame.length;
  reading = EMPTY_FRAME; // the frame is not kept alive by the decoder
  return whole ? v : NOT_SIMPLE;
}

/*
 * decodeSimple's reader: the frame and where it is in it, kept here rather
 * than in closures made per frame (five of them, 440 bytes of garbage for a
 * null call's frame). Decoding never calls out, so no frame interleaves.
 */
const EMPTY_FRAME = new Uint8Array(0);
let reading: Uint8Array = EMPTY_FRAME;
let at = 0;

/** The next byte, or -1 past the end. */
function nextByte(): number {
  return at < reading.length ? reading[at++]! : -1;
}

/** The next `bytes` bytes as a big-endian unsigned integer, or -1 when the frame ends first. */
function nextBE(bytes: number): number {
  if (at + bytes > reading.length) return -1;
  let v = 0;
  for (let k = 0; k < bytes; k++) v = v * 256 + reading[at++]!;
  return v;
}

function simpleValue(depth: number): unknown {
  const tag = nextByte();
  if (tag < 0) return NOT_SIMPLE;
  if (tag < 0x80) return tag;
  if (tag >= 0xe0) return tag - 0x100;
  if (tag >= 0x90 && tag <= 0x9f) return simpleArray(tag & 0x0f, depth);
  if (tag >= 0xa0 && tag <= 0xbf) return simpleAscii(tag & 0x1f);
  let len: number;
  switch (tag) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xcc:
    case 0xcd:
    case 0xce: {
      const v = nextBE(1 << (tag - 0xcc));
      return v < 0 ? NOT_SIMPLE : v;
    }
    case 0xd0:
    case 0xd1:
    case 0xd2: {
      const bytes = 1 << (tag - 0xd0);
      const v = nextBE(bytes);
      if (v < 0) return NOT_SIMPLE;
      const bits = bytes * 8;
      return v >= 2 ** (bits - 1) ? v - 2 ** bits : v;
    }
    case 0xcb: {
      if (at + 8 > reading.length) return NOT_SIMPLE;
      const v = new DataView(reading.buffer, reading.byteOffset + at, 8).getFloat64(0);
      at += 8;
      return v;
    }
    case 0xc4:
    case 0xc5:
    case 0xc6:
      len = nextBE(1 << (tag - 0xc4));
      if (len < 0 || at + len > reading.length) return NOT_SIMPLE;
      at += len;
      return new Uint8Array(reading.buffer, reading.byteOffset + at - len, len);
    case 0xd9:
      len = nextByte();
      return len < 0 ? NOT_SIMPLE : simpleAscii(len);
    case 0xdc:
      len = nextBE(2);
      return len < 0 ? NOT_SIMPLE : simpleArray(len, depth);
    default:
      return NOT_SIMPLE;
  }
}

function simpleAscii(len: number): unknown {
  if (at + len > reading.length) return NOT_SIMPLE;
  let out = '';
  for (let k = 0; k < len; k++) {
    const c = reading[at++]!;
    if (c > 0x7f) return NOT_SIMPLE;
    out += String.fromCharCode(c);
  }
  return out;
}

function simpleArray(len: number, depth: number): unknown {
  // Every item takes at least a byte: a longer count is a frame that ends early.
  if (depth >= 4 || len > reading.length - at) return NOT_SIMPLE;
  const out: unknown[] = new Array(len);
  for (let k = 0; k < len; k++) {
    const v = simpleValue(depth + 1);
    if (v === NOT_SIMPLE) return NOT_SIMPLE;
    out[k] = v;
  }
  return out;
}

export type Reply = [callId: number, errno: number, result?: unknown];

/**
 * The item count a frame's top-level msgpack array header declares, read
 * without decoding anything; undefined when the frame does not start with an
 * array header. A request has a handful of items, so a frame that declares
 * thousands can be refused before its decoding costs the kernel anything.
 */
export function peekArrayLength(frame: Uint8Array): number | undefined {
  const tag = frame[0];
  if (tag === undefined) return undefined;
  if (tag >= 0x90 && tag <= 0x9f) return tag & 0x0f;
  if (tag === 0xdc && frame.length >= 3) return (frame[1]! << 8) | frame[2]!;
  if (tag === 0xdd && frame.length >= 5) return ((frame[1]! << 24) | (frame[2]! << 16) | (frame[3]! << 8) | frame[4]!) >>> 0;
  return undefined;
}

/**
 * Reads the call id from a frame's first bytes without decoding the rest, so
 * that a frame refused unread (too large) can still be answered by id.
 * Returns UNKNOWN_CALL_ID when the frame does not start like a request.
 */
export function peekCallId(frame: Uint8Array): number {
  let i = 0;
  const tag = frame[i++];
  if (tag === undefined) return UNKNOWN_CALL_ID;
  if (tag >= 0x91 && tag <= 0x9f) {
    // fixarray with at least one element
  } else if (tag === 0xdc) i += 2;
  else if (tag === 0xdd) i += 4;
  else return UNKNOWN_CALL_ID;
  const t = frame[i++];
  if (t === undefined) return UNKNOWN_CALL_ID;
  if (t <= 0x7f) return t;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (t === 0xcc && i + 1 <= frame.length) return view.getUint8(i);
  if (t === 0xcd && i + 2 <= frame.length) return view.getUint16(i);
  if (t === 0xce && i + 4 <= frame.length) return view.getUint32(i);
  return UNKNOWN_CALL_ID;
}
