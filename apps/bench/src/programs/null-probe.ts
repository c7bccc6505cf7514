/**
 * The probe of the loaded-kernel figure: blocking null syscalls timed in
 * blocks, each when the host rings its number. Two probes run this same
 * program, one alone on a kernel of its own and one on the loaded kernel,
 * and the host rings them in alternation, so both series are timed the same
 * way under the same load of the machine. It then stays attached until the
 * host rings one past the last block, so that its memory stays in every
 * later reading.
 */
import { defineProgram } from '@moat/libc';
import { bellRung } from '../doorbell.js';
import { timeSync } from '../measure.js';

export interface NullProbeArgs {
  /** Untimed calls before the first block (the kernel's and the probe's code get optimised). */
  warmup: number;
  /** Untimed calls before each later block: the thread has slept since the last one. */
  blockWarmup: number;
  /** Timed calls per block. */
  iterations: number;
  blocks: number;
  /** Rung to 1..blocks for each block, then to blocks + 1 to let the probe end. */
  bell: SharedArrayBuffer;
}

/** Logs `ready`, then publishes every sample so far (µs) and logs `block <n> done` after each block. */
export default defineProgram<NullProbeArgs, null>(async ({ sys, args, log, publish }) => {
  log('ready');
  const samples: number[] = [];
  for (let block = 1; block <= args.blocks; block++) {
    await bellRung(args.bell, block);
    const got = timeSync(block === 1 ? args.warmup : args.blockWarmup, args.iterations, () => sys.null());
    for (const s of got) samples.push(s);
    publish(Float64Array.from(samples));
    log(`block ${block} done`);
  }
  await bellRung(args.bell, args.blocks + 1);
  return null;
});
