/**
 * A domain that makes null syscalls to its kernel and times them: the cost
 * of the syscall channel itself (encode, post, validate, schedule, reply,
 * wake), since the kernel does nothing for the call.
 */
import { defineProgram } from '@moat/libc';
import { throughput, timeAsync, timeSync, togetherTrials, type Span, type ThroughputPlan } from '../measure.js';

export type NullCallsArgs =
  | { mode: 'sync'; warmup: number; iterations: number }
  | { mode: 'async'; warmup: number; iterations: number }
  | ({ mode: 'in-flight' } & ThroughputPlan)
  /** One of several domains (or workers) started together by the host's bell: see togetherTrials. */
  | ({ mode: 'together'; bell: SharedArrayBuffer } & ThroughputPlan);

/** Returns latency samples in µs (sync, async), calls/s per trial (in-flight), or its trials' spans (together). */
export default defineProgram<NullCallsArgs, Float64Array | number[] | Span[]>(async ({ sys, async: net, args, log }) => {
  switch (args.mode) {
    case 'sync':
      return timeSync(args.warmup, args.iterations, () => sys.null());
    case 'async':
      return timeAsync(args.warmup, args.iterations, () => net.null());
    case 'in-flight':
      return throughput(args, () => net.null());
    case 'together':
      return togetherTrials(args, args.bell, (trial) => log(`ready ${trial}`), () => net.null());
  }
});
