/**
 * Lockstep's clock for a domain: performance.now(), Date.now() and new Date()
 * read the kernel's virtual time, which the kernel writes into the channel's
 * signal (VIRTUAL_CLOCK_OFFSET) before each answer. Time stands still while
 * the program runs and moves only in the kernel, as a CPU infinitely fast
 * would see it; so a program that measures or waits on the time (through
 * syscalls: a loop that only reads the clock never ends) does the same thing
 * in every run of a seed.
 */
import { VIRTUAL_CLOCK_OFFSET } from '@moat/abi/core';

/** What a virtual Date reads at virtual time 0: a fixed instant, so that dates repeat too. */
export const VIRTUAL_EPOCH_MS = Date.UTC(2000, 0, 1);

/** Makes this thread's clocks read the virtual time in `signal`. */
export function useVirtualClock(signal: SharedArrayBuffer): void {
  const clock = new Float64Array(signal, VIRTUAL_CLOCK_OFFSET, 1);
  const now = () => clock[0]!;
  performance.now = now;
  const RealDate = Date;
  // A Date made with no argument, and Date.now(), are the virtual epoch plus the virtual time; the rest is Date's.
  class VirtualDate extends RealDate {
    constructor(...args: ConstructorParameters<DateConstructor> | []) {
      if (args.length === 0) super(VIRTUAL_EPOCH_MS + now());
      else super(...(args as ConstructorParameters<DateConstructor>));
    }
    static override now(): number {
      return VIRTUAL_EPOCH_MS + now();
    }
  }
  globalThis.Date = VirtualDate as DateConstructor;
}
