/**
 * An idle domain, as a network daemon waiting for work is: after its first
 * syscall it binds a UDP socket and waits in recv() on it, a call parked in
 * the kernel until the domain is killed (nothing is ever sent to it). The
 * recv is the promise kind, so that its thread's event loop stays free for
 * the memory readings' garbage collections; in the kernel it is parked the
 * same way as a blocking one.
 */
import { AF_INET, defineProgram, SOCK_DGRAM } from '@moat/libc';
import { announceStart } from './started.js';

export default defineProgram<null, never>(async ({ sys, async: net, log }) => {
  announceStart(sys, log);
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(s, { addr: '127.0.0.1', port: 0 });
  await net.recv(s, 16);
  throw new Error('an idle domain received a datagram');
});
