/**
 * Copies that touch shared memory, at memcpy speed. V8 copies the bytes of a
 * SharedArrayBuffer (TypedArray `set`, `slice`) with its own relaxed-atomic
 * loop: a word at a time when source and target agree modulo 8, a byte at a
 * time otherwise. 64 KiB took 5 µs aligned and 35 µs not (this VM, Node 20),
 * where an ordinary memcpy takes 2.5 µs either way. Node's
 * `Buffer.prototype.fill` with a byte array as its value is one memcpy in
 * C++ when the value is as long as the range, shared memory or not; past its
 * fixed cost of about 150 ns it is the fastest copy a thread has into or out
 * of shared memory.
 */

const nativeFill = Buffer.prototype.fill;

/** From this length a copy into or out of shared memory goes by memcpy (below it `set` is cheaper or no dearer). */
const MEMCPY_FROM_BYTES = 2048;
/** From this length a copy whose ends disagree modulo 8 (a byte at a time by `set`) does. */
const MEMCPY_UNALIGNED_FROM_BYTES = 256;

/**
 * `target.set(source, at)`, by memcpy when either side is shared memory and
 * the copy is long enough to gain by it. The two must not overlap (a memcpy
 * of overlapping ranges is undefined): use `copyWithin` within one buffer.
 */
export function copyBytes(target: Uint8Array, at: number, source: Uint8Array): void {
  const n = source.length;
  if (n >= MEMCPY_UNALIGNED_FROM_BYTES && (target.buffer instanceof SharedArrayBuffer || source.buffer instanceof SharedArrayBuffer)) {
    if (n >= MEMCPY_FROM_BYTES || ((source.byteOffset ^ (target.byteOffset + at)) & 7) !== 0) {
      if (at < 0 || at + n > target.length) throw new RangeError(`copyBytes: ${n} bytes do not fit at ${at} of ${target.length}`);
      nativeFill.call(target, source, at, at + n);
      return;
    }
  }
  target.set(source, at);
}

/** A copy of `source` (shared memory or not) in ordinary memory of its own, made by one `copyBytes`. */
export function ownCopy(source: Uint8Array): Uint8Array<ArrayBuffer> {
  // Fewer objects for a short one (a null call's reply). Not source.slice(): a Buffer's slice is a view.
  if (source.length < MEMCPY_UNALIGNED_FROM_BYTES) return new Uint8Array(source);
  const out = new Uint8Array(Buffer.allocUnsafeSlow(source.length).buffer, 0, source.length);
  copyBytes(out, 0, source);
  return out;
}
