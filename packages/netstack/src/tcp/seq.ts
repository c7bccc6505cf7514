/**
 * Sequence-number arithmetic modulo 2^32 (RFC 9293 3.4). Sequence numbers are
 * unsigned 32-bit integers (0 .. 2^32-1) and every comparison is made through
 * the signed 32-bit distance, as Linux's before()/after() do, so it stays right
 * across the wrap as long as the two numbers are less than 2^31 apart; TCP
 * keeps them far closer than that (windows are at most 2^30, RFC 7323 2.3).
 * At exactly 2^31 apart the order is undefined (RFC 1982 3.2): here each
 * number is then "less than" the other. No argument is validated: these run
 * on every segment.
 */

/** `a + n` modulo 2^32; `n` may be negative (e.g. -1 for "the last byte before"). */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** The signed distance `a - b`, in [-2^31, 2^31): positive when `a` is after `b`. */
export function seqSub(a: number, b: number): number {
  return (a - b) | 0;
}

export function seqLt(a: number, b: number): boolean {
  return seqSub(a, b) < 0;
}

export function seqLeq(a: number, b: number): boolean {
  return seqSub(a, b) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return seqSub(a, b) > 0;
}

export function seqGeq(a: number, b: number): boolean {
  return seqSub(a, b) >= 0;
}

/** The later of `a` and `b` in sequence space. */
export function seqMax(a: number, b: number): number {
  return seqGt(a, b) ? a : b;
}

/** The earlier of `a` and `b` in sequence space. */
export function seqMin(a: number, b: number): number {
  return seqLt(a, b) ? a : b;
}

/**
 * `start <= x < start + size` in sequence space, for 0 <= size <= 2^32: the
 * unsigned distance from `start` is below `size`. An empty window (size 0)
 * holds nothing, not even `start` (RFC 9293 3.10.7.4 treats that case apart).
 */
export function seqInWindow(x: number, start: number, size: number): boolean {
  return ((x - start) >>> 0) < size;
}
