/**
 * How a baseline sender blocks: exactly as @moat/libc's Channel.exchangeSync
 * does (spin on the wake word for SPIN loads, then Atomics.wait), so the
 * baselines pay the same wake-up costs as Moat's synchronous path.
 */

/** The same count as the SPIN of packages/libc/src/channel.ts. */
export const SPIN = 2000;

/** Blocks until `word[index]` differs from `seen`: spin first, then sleep. */
export function waitForChange(word: Int32Array, index: number, seen: number): void {
  let spins = SPIN;
  while (spins-- > 0 && Atomics.load(word, index) === seen);
  if (spins < 0) Atomics.wait(word, index, seen);
}
