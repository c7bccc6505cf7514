/**
 * Holds idle connections: listens, and once the host rings `go` accepts
 * `connections` (until then it has no call waiting in the kernel), then
 * keeps them open, sending and reading nothing, until it rings `release`.
 */
import { AF_INET, defineProgram, SOCK_STREAM } from '@moat/libc';
import { bellRung } from '../doorbell.js';
import { announceStart } from './started.js';

export interface ConnAcceptorArgs {
  addr: string;
  port: number;
  connections: number;
  /** Accepts kept waiting in the kernel at once: each kernel turn then serves many, not one. */
  depth: number;
  bell: SharedArrayBuffer;
  go: number;
  release: number;
}

/** Returns how many connections it held. */
export default defineProgram<ConnAcceptorArgs, number>(async ({ sys, async: net, args, log }) => {
  announceStart(sys, log);
  const l = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(l, { addr: args.addr, port: args.port });
  // Room for every connection, so that no SYN is dropped (and retried a second later) while we accept.
  sys.listen(l, Math.min(args.connections + 64, 4096));
  log('ready');
  await bellRung(args.bell, args.go);
  const held: number[] = [];
  let started = 0;
  const lane = async () => {
    while (started < args.connections) {
      started++;
      held.push((await net.accept(l)).handle);
    }
  };
  await Promise.all(Array.from({ length: Math.min(args.depth, args.connections) }, lane));
  log('held');
  await bellRung(args.bell, args.release);
  return held.length;
});
