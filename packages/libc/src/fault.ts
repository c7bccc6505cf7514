/**
 * What a domain does when the kernel delivers an injected fault on return
 * from a syscall (FAULT_ERRNO): the fault campaigns' way of making a domain
 * throw, exit, hang or run out of memory at a chosen call, whatever its
 * program does.
 */
import { resourceLimits } from 'node:worker_threads';
import type { FaultDelivery } from '@moat/abi/core';

/** The error an injected 'throw' raises from the syscall (a program may catch it, as any library error). */
export class InjectedFault extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'InjectedFault';
  }
}

/** EX_SOFTWARE: the exit code of an injected 'exit'. */
export const FAULT_EXIT_CODE = 70;

/** Never returns normally: throws, exits, spins, or exhausts the heap. */
export function deliverFault(delivery: FaultDelivery): never {
  const detail = typeof delivery?.detail === 'string' ? delivery.detail : 'fault';
  switch (delivery?.fault) {
    case 'exit':
      process.exit(FAULT_EXIT_CODE);
    // falls through: process.exit does not return
    case 'hang':
      // A spin with no syscall: only the host's watchdog (or a kill) ends it.
      for (;;);
    case 'oom':
      return exhaustHeap(detail);
    default:
      throw new InjectedFault(detail);
  }
}

/**
 * Grows the heap until V8 gives up. Only where the heap is bounded (a
 * worker's resourceLimits, or a child's --max-old-space-size): unbounded, it
 * would take the host's memory with it, so it throws instead.
 */
function exhaustHeap(detail: string): never {
  const bounded = (resourceLimits.maxOldGenerationSizeMb ?? 0) > 0 || process.execArgv.some((a) => a.startsWith('--max-old-space-size'));
  if (!bounded) throw new InjectedFault(`${detail} (refused: the domain has no heap limit, so it throws instead)`);
  const hoard: number[][] = [];
  for (;;) hoard.push(new Array(1 << 16).fill(hoard.length));
}
