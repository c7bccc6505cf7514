/**
 * The life of a stream socket as the BSD API sees it, as an XState machine.
 * The socket layer sends the calls that succeeded and what TCP reported; each
 * state's `meta.calls` says which calls it accepts and, for the others, the
 * errno Linux returns, so the socket layer answers by looking it up.
 *
 * A socket returned by accept() starts connected:
 * `createActor(socketMachine, { snapshot: socketMachine.resolveState({ value: 'connected' }) })`.
 * Once closed, the descriptor is gone and the handle table answers EBADF.
 */
import type { ErrnoName } from '@moat/abi';
import { setup } from 'xstate';
import type { TcpError } from './connection-machine.js';

/**
 * - `readShut`: shutdown(SHUT_RD), or the peer's FIN (Linux sets RCV_SHUTDOWN
 *   for both): recv returns what is buffered, then 0.
 * - `writeShut`: shutdown(SHUT_WR): our FIN is queued; send fails with EPIPE.
 * - `bothShut`: both directions shut, by shutdown(), by the peer's FIN, or by a
 *   reset or timeout (the socket layer keeps that error as SO_ERROR).
 */
export type SocketState =
  | 'created'
  | 'bound'
  | 'listening'
  | 'connecting'
  | 'connected'
  | 'readShut'
  | 'writeShut'
  | 'bothShut'
  | 'closed';

export type SocketEvent =
  | { type: 'BIND' }
  /** listen(); from created, the socket is bound to an ephemeral port first. */
  | { type: 'LISTEN' }
  /** connect() started the handshake (blocking or EINPROGRESS). */
  | { type: 'CONNECT' }
  /** TCP reached ESTABLISHED. */
  | { type: 'CONNECTED' }
  /** TCP ended the connection with an error; the socket layer keeps it as SO_ERROR. */
  | { type: 'CONNECTION_FAILED'; error: TcpError }
  | { type: 'SHUT_RD' }
  | { type: 'SHUT_WR' }
  | { type: 'SHUT_RDWR' }
  /** The peer's FIN arrived (TCP entered CLOSE-WAIT or CLOSING/TIME-WAIT). */
  | { type: 'PEER_CLOSED' }
  | { type: 'CLOSE' };

export type SocketEventType = SocketEvent['type'];

export type SocketCall = 'bind' | 'listen' | 'connect' | 'accept' | 'send' | 'recv' | 'shutdown' | 'close';

/**
 * 'ok' means the call proceeds (it may still block, or fail with EAGAIN or a
 * pending SO_ERROR, which the data path decides); an errno is the answer.
 */
export type SocketCallAnswer = 'ok' | ErrnoName;

export interface SocketStateMeta {
  calls: Record<SocketCall, SocketCallAnswer>;
}

/** Calls on a socket that has (or had) a connection; the answers Linux gives (inet_bind, inet_listen, inet_stream_connect). */
const connectedCalls = {
  bind: 'EINVAL',
  listen: 'EINVAL',
  connect: 'EISCONN',
  accept: 'EINVAL',
  send: 'ok',
  recv: 'ok',
  shutdown: 'ok',
  close: 'ok',
} as const satisfies Record<SocketCall, SocketCallAnswer>;

/** send() on a socket that never connected: EPIPE on Linux (sk_stream_wait_connect), not ENOTCONN. */
const unconnectedCalls = {
  bind: 'ok',
  listen: 'ok',
  connect: 'ok',
  accept: 'EINVAL',
  send: 'EPIPE',
  recv: 'ENOTCONN',
  shutdown: 'ENOTCONN',
  close: 'ok',
} as const satisfies Record<SocketCall, SocketCallAnswer>;

export const socketMachine = setup({
  types: {
    events: {} as SocketEvent,
    meta: {} as SocketStateMeta,
  },
}).createMachine({
  id: 'socket',
  initial: 'created',
  states: {
    created: {
      meta: { calls: unconnectedCalls },
      on: { BIND: 'bound', LISTEN: 'listening', CONNECT: 'connecting', CLOSE: 'closed' },
    },
    bound: {
      meta: { calls: { ...unconnectedCalls, bind: 'EINVAL' } },
      on: { LISTEN: 'listening', CONNECT: 'connecting', CLOSE: 'closed' },
    },
    listening: {
      // listen() again only changes the backlog; shutdown(SHUT_WR) does nothing.
      meta: { calls: { ...unconnectedCalls, bind: 'EINVAL', connect: 'EISCONN', accept: 'ok', shutdown: 'ok' } },
      // Linux: shutdown with SHUT_RD stops listening (inet_shutdown, tcp_disconnect).
      on: { SHUT_RD: 'bound', SHUT_RDWR: 'bound', CLOSE: 'closed' },
    },
    connecting: {
      // send and recv wait for the handshake (or EAGAIN); a second connect() gets EALREADY.
      meta: { calls: { ...connectedCalls, connect: 'EALREADY' } },
      on: {
        CONNECTED: 'connected',
        // The socket stays bound and may connect() again (after reporting SO_ERROR).
        CONNECTION_FAILED: 'bound',
        // Linux: any shutdown during SYN-SENT abandons the attempt (inet_shutdown).
        SHUT_RD: 'bound',
        SHUT_WR: 'bound',
        SHUT_RDWR: 'bound',
        CLOSE: 'closed',
      },
    },
    connected: {
      meta: { calls: connectedCalls },
      on: {
        SHUT_RD: 'readShut',
        PEER_CLOSED: 'readShut',
        SHUT_WR: 'writeShut',
        SHUT_RDWR: 'bothShut',
        CONNECTION_FAILED: 'bothShut',
        CLOSE: 'closed',
      },
    },
    readShut: {
      meta: { calls: connectedCalls },
      on: { SHUT_WR: 'bothShut', SHUT_RDWR: 'bothShut', CONNECTION_FAILED: 'bothShut', CLOSE: 'closed' },
    },
    writeShut: {
      meta: { calls: { ...connectedCalls, send: 'EPIPE' } },
      on: {
        SHUT_RD: 'bothShut',
        PEER_CLOSED: 'bothShut',
        SHUT_RDWR: 'bothShut',
        CONNECTION_FAILED: 'bothShut',
        CLOSE: 'closed',
      },
    },
    bothShut: {
      meta: { calls: { ...connectedCalls, send: 'EPIPE' } },
      on: { CLOSE: 'closed' },
    },
    closed: {
      type: 'final',
      meta: {
        calls: {
          bind: 'EBADF',
          listen: 'EBADF',
          connect: 'EBADF',
          accept: 'EBADF',
          send: 'EBADF',
          recv: 'EBADF',
          shutdown: 'EBADF',
          close: 'EBADF',
        },
      },
    },
  },
});

/** The answer to `call` in `state`, from the machine's `meta`. */
export function socketCallAnswer(state: SocketState, call: SocketCall): SocketCallAnswer {
  return (socketMachine.states[state].meta as SocketStateMeta).calls[call];
}
