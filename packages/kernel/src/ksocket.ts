/** The kernel's socket object: never leaves the kernel; domains hold handles to it. */
import type { DatagramSocket } from '@moat/netstack';
import type { Domain } from './domain.js';

let nextSocketId = 1;

export class KSocket {
  readonly id = nextSocketId++;
  nonblocking = false;
  /** SO_RCVTIMEO / SO_SNDTIMEO in milliseconds; 0 blocks without limit. */
  rcvtimeoMs = 0;
  sndtimeoMs = 0;
  sndbuf = 212992;
  closed = false;
  /** Entries other domains hold through grants: revoked when the owner closes or dies. */
  readonly grants: { domain: Domain; handle: number }[] = [];

  constructor(
    readonly owner: Domain,
    readonly sock: DatagramSocket,
  ) {}
}
