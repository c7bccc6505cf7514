/** The kernel's socket object: never leaves the kernel; domains hold handles to it. */
import { DatagramSocket, MachineCell, socketMachine, type TcpSocket } from '@moat/netstack';
import type { Domain } from './domain.js';

export class KSocket {
  nonblocking = false;
  /** SO_RCVTIMEO / SO_SNDTIMEO in milliseconds; 0 blocks without limit. */
  rcvtimeoMs = 0;
  sndtimeoMs = 0;
  sndbuf = 212992;
  closed = false;
  /** Stream bytes last charged to the owner's account for this socket's connection. */
  charged = 0;
  /** Entries other domains hold through grants: revoked when the owner closes or dies. */
  readonly grants: { domain: Domain; handle: number }[] = [];

  /** shutdown() of a stream socket: no more reads (recv answers end of stream) / no more writes (EPIPE). */
  readShut = false;
  writeShut = false;
  /** SO_REUSEADDR: a stream socket may then bind a port connections in TIME-WAIT still use. */
  reuseAddr = false;
  /** SO_LINGER 1 (linger 0): close resets the connection. */
  abortOnClose = false;

  /**
   * A stream socket's life as the BSD API sees it (socketMachine): the kernel
   * tells it what happened and asks it which calls the current state allows.
   */
  readonly life: MachineCell<typeof socketMachine> | undefined;

  /** `accepted`: a connection a listener produced, born connected. */
  constructor(
    readonly owner: Domain,
    readonly sock: DatagramSocket | TcpSocket,
    accepted = false,
  ) {
    if (!(sock instanceof DatagramSocket)) {
      this.life = new MachineCell(socketMachine, accepted ? socketMachine.resolveState({ value: 'connected' }) : undefined);
    }
  }

  /** The datagram socket (UDP, ping), or undefined for a stream socket. */
  get dgram(): DatagramSocket | undefined {
    return this.sock instanceof DatagramSocket ? this.sock : undefined;
  }

  /** The stream (TCP) socket, or undefined for a datagram one. */
  get stream(): TcpSocket | undefined {
    return this.sock instanceof DatagramSocket ? undefined : this.sock;
  }
}
