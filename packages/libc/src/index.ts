export { Channel, PortTransport, type FrameTransport } from './channel.js';
export { PipeTransport } from './pipe-transport.js';
export * from './pipe-protocol.js';
export * from './sockets.js';
export * from './program.js';
export { InjectedFault, FAULT_EXIT_CODE } from './fault.js';
export { useVirtualClock, VIRTUAL_EPOCH_MS } from './virtual-clock.js';
export {
  AF_INET,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOCK_NONBLOCK,
  IPPROTO_UDP,
  IPPROTO_ICMP,
  IPPROTO_IP,
  IP_MTU_DISCOVER,
  IP_PMTUDISC_DO,
  IP_PMTUDISC_DONT,
  SOL_SOCKET,
  SO_REUSEADDR,
  SO_KEEPALIVE,
  TCP_NODELAY,
  IPPROTO_TCP,
  SHUT_RD,
  SHUT_WR,
  SHUT_RDWR,
  MSG_NOSIGNAL,
  SO_RCVBUF,
  SO_SNDBUF,
  SO_RCVTIMEO,
  SO_SNDTIMEO,
  SO_LINGER,
  SO_ERROR,
  MSG_DONTWAIT,
  MSG_PEEK,
  MSG_TRUNC,
  F_GETFL,
  F_SETFL,
  O_NONBLOCK,
  POLLIN,
  POLLOUT,
  POLLERR,
  POLLHUP,
  POLLNVAL,
  Rights,
  RIGHTS_ALL,
  Errno,
  errnoName,
  strerror,
  SyscallError,
  UDP_MAX_PAYLOAD,
  type ErrnoName,
} from '@moat/abi/core';

/** The file a domain worker starts from. */
export const DOMAIN_RUNTIME_URL = new URL('./runtime.js', import.meta.url);
/** The file a domain child process starts from (isolation 'process'). */
export const PROCESS_RUNTIME_URL = new URL('./process-runtime.js', import.meta.url);
