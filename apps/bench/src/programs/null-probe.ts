/**
 * The probe of the loaded-kernel figure: blocking null syscalls timed once
 * with the domain alone on its kernel, and again after the host rings
 * `loaded`, once the kernel holds what the figure adds. The same domain,
 * the same calls, the same timing code. It then stays attached until the
 * host rings `release`, so that its memory stays in every later reading.
 */
import { defineProgram } from '@moat/libc';
import { bellRung } from '../doorbell.js';
import { timeSync } from '../measure.js';

export interface NullProbeArgs {
  /** Untimed calls before each phase's timed ones. */
  warmup: { idle: number; loaded: number };
  iterations: number;
  bell: SharedArrayBuffer;
  loaded: number;
  release: number;
}

/** Publishes each phase's samples (µs) as soon as they are taken, logging `idle done` and `loaded done`. */
export default defineProgram<NullProbeArgs, null>(async ({ sys, args, log, publish }) => {
  publish(timeSync(args.warmup.idle, args.iterations, () => sys.null()));
  log('idle done');
  await bellRung(args.bell, args.loaded);
  publish(timeSync(args.warmup.loaded, args.iterations, () => sys.null()));
  log('loaded done');
  await bellRung(args.bell, args.release);
  return null;
});
