/**
 * Opens `connections` to the acceptor, `depth` connects in flight, once the
 * host rings `go`; then keeps them open, idle, until it rings `release`.
 * The kernel picks each local port from its ephemeral range.
 */
import { AF_INET, defineProgram, SOCK_STREAM, type SockAddr } from '@moat/libc';
import { bellRung } from '../doorbell.js';
import { announceStart } from './started.js';

export interface ConnOpenerArgs {
  to: SockAddr;
  connections: number;
  depth: number;
  bell: SharedArrayBuffer;
  go: number;
  release: number;
}

/** Logs `held <ms>` (the time it took to open them all), and returns how many it held. */
export default defineProgram<ConnOpenerArgs, number>(async ({ sys, async: net, args, log }) => {
  announceStart(sys, log);
  await bellRung(args.bell, args.go);
  const t = performance.now();
  const held: number[] = [];
  let started = 0;
  const lane = async () => {
    while (started < args.connections) {
      started++;
      const s = await net.socket(AF_INET, SOCK_STREAM);
      await net.connect(s, args.to);
      held.push(s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(args.depth, args.connections) }, lane));
  log(`held ${performance.now() - t}`);
  await bellRung(args.bell, args.release);
  return held.length;
});
