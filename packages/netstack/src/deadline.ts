/** Deadlines (ms on the stack's clock), each of which may be none (undefined). */

/** The earlier of two deadlines, either of which may be none. */
export function earlier(a: number | undefined, b: number | undefined): number | undefined {
  return b === undefined || (a !== undefined && a <= b) ? a : b;
}
