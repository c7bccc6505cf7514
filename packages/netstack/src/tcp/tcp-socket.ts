/**
 * A stream socket inside the stack: its binding, and either a listener (with
 * its backlog of connections being set up and of connections ready to be
 * accepted) or one connection. What the BSD API adds (blocking, handles,
 * errno) is the kernel's.
 */
import type { Allocate } from '../buffer.js';
import type { Endpoint } from '../datagram-socket.js';
import type { TcpConfig, TcpConnection } from './connection.js';

export interface TcpListener {
  backlog: number;
  /** Handshakes in progress (SYN-RECEIVED). */
  readonly pending: Set<TcpConnection>;
  /** Established connections waiting for accept(), oldest first. */
  readonly ready: TcpConnection[];
}

export class TcpSocket {
  local: Endpoint | null = null;
  remote: Endpoint | null = null;
  listener: TcpListener | undefined;
  conn: TcpConnection | undefined;
  /** SO_REUSEADDR: may bind a port that connections (in TIME-WAIT, say) still use; never one a socket holds. */
  reuseAddr = false;
  /** Options for the connection(s) this socket makes or accepts (buffers, TCP_NODELAY, SO_KEEPALIVE). */
  readonly config: Partial<TcpConfig> = {};

  /** `allocate` charges the frames this socket's connections send to its owner. */
  constructor(readonly allocate: Allocate) {}
}
