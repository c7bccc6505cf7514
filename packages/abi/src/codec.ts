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
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

/** Frames larger than this are refused before decoding. */
export const MAX_FRAME_BYTES = 1 << 20;
export const MAX_CALL_ID = 0xffffffff;
export const UNKNOWN_CALL_ID = 0;

/** An exact, owned request frame, safe to post with its buffer transferred. */
export function encodeRequest(callId: number, sysno: number, args: readonly unknown[]): Uint8Array<ArrayBuffer> {
  return new Uint8Array(packr.pack([callId, sysno, ...args]));
}

/** An exact, owned reply frame, safe to post with its buffer transferred. */
export function encodeReply(callId: number, errno: number, result?: unknown): Uint8Array<ArrayBuffer> {
  return new Uint8Array(packr.pack(result === undefined ? [callId, errno] : [callId, errno, result]));
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
  let value: unknown;
  let end = -1;
  packr.unpackMultiple(frame, (v, _start, stop) => {
    value = v;
    end = stop ?? -1;
    return false; // the first value only: what follows is never decoded
  });
  if (end !== frame.length) throw new Error(`not one msgpack value: ${frame.length - end} bytes after it`);
  return value;
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
