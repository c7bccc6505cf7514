/**
 * Copies that touch shared memory, at word speed. V8 copies the bytes of a
 * SharedArrayBuffer (TypedArray `set`, `slice`) a word at a time only when
 * source and target agree modulo 8, and a byte at a time otherwise: 64 KiB
 * took 4.7 µs aligned and 33 µs not (this VM, Node 20). Such a copy is easy
 * to make without knowing it: a ring buffer's tail, or a header before the
 * data, puts one end off the other's phase.
 */

/** Ordinary memory that a copy goes through when its ends disagree (one per thread, as every module is). */
let bounce = new Uint8Array(0);

/**
 * `target.set(source, at)`; when either side is shared memory and the two
 * disagree modulo 8, through ordinary memory in the shared side's phase
 * instead: a word-speed copy and a memmove cost a fraction of one copy made
 * a byte at a time.
 */
export function copyBytes(target: Uint8Array, at: number, source: Uint8Array): void {
  const targetShared = target.buffer instanceof SharedArrayBuffer;
  if ((!targetShared && !(source.buffer instanceof SharedArrayBuffer)) || ((source.byteOffset ^ (target.byteOffset + at)) & 7) === 0) {
    target.set(source, at);
    return;
  }
  // The bounce buffer takes the phase of the shared side, so that the copy to or from it goes a word at a time.
  const phase = (targetShared ? target.byteOffset + at : source.byteOffset) & 7;
  if (bounce.length < source.length + phase) bounce = new Uint8Array(Math.max(source.length + phase, 2 * bounce.length));
  const via = bounce.subarray(phase, phase + source.length);
  via.set(source);
  target.set(via, at);
}
