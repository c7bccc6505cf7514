export { Channel } from './channel.js';
export * from './sockets.js';
export * from './program.js';
export {
  AF_INET,
  SOCK_DGRAM,
  SOCK_STREAM,
  IPPROTO_UDP,
  IPPROTO_ICMP,
  IPPROTO_IP,
  IP_MTU_DISCOVER,
  IP_PMTUDISC_DO,
  IP_PMTUDISC_DONT,
  SOL_SOCKET,
  SO_RCVBUF,
  SO_SNDBUF,
  SO_RCVTIMEO,
  SO_SNDTIMEO,
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
} from '@moat/abi';

/** The file a domain worker starts from. */
export const DOMAIN_RUNTIME_URL = new URL('./runtime.js', import.meta.url);
