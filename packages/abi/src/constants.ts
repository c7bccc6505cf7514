/** Socket-API constants, with Linux values where Linux has one. */

export const AF_INET = 2;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const IPPROTO_UDP = 17;
export const IPPROTO_TCP = 6;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IP = 0;

/** IP_MTU_DISCOVER (level IPPROTO_IP): DO sets DF and refuses what exceeds the MTU; DONT fragments (the default here). */
export const IP_MTU_DISCOVER = 10;
export const IP_PMTUDISC_DONT = 0;
export const IP_PMTUDISC_DO = 2;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_KEEPALIVE = 9;
/** Level IPPROTO_TCP. */
export const TCP_NODELAY = 1;

/** shutdown(how). */
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;
/**
 * SO_LINGER, its abortive form only, as an int: 1 is Linux's
 * { l_onoff: 1, l_linger: 0 } (close resets the connection and drops what
 * is unsent, as a close with data unread does), 0 turns it off (the
 * default). A linger of some seconds (close blocking until the data is
 * sent) is not offered: EINVAL.
 */
export const SO_LINGER = 13;

/** send/recv flags. */
export const MSG_PEEK = 0x2;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
/** No SIGPIPE on a broken stream (Moat raises no signals: accepted and ignored). */
export const MSG_NOSIGNAL = 0x4000;
/**
 * Moat's own recv flag, no Linux one (Linux leaves this bit unused): on a
 * stream socket the domain opened or accepted and shares with no other
 * domain, the reply may carry up to READAHEAD_MAX_BYTES more of the stream
 * after the `maxlen` asked for (see RecvfromResult's `answered`), which libc
 * keeps for the recvs that follow: one hand-over between threads for several
 * recvs. Ignored on datagrams and with MSG_PEEK.
 */
export const MSG_READAHEAD = 0x1000000;
/** The most bytes a read-ahead carries: with a 64 KiB recv, what the reply slot holds. */
export const READAHEAD_MAX_BYTES = 448 * 1024;

/** fcntl. */
export const F_GETFL = 3;
export const F_SETFL = 4;
export const O_NONBLOCK = 0o4000;
/** Or'ed into socket()'s type for a non-blocking socket, as on Linux (the same bit as O_NONBLOCK). */
export const SOCK_NONBLOCK = O_NONBLOCK;

/** poll events (Linux values). */
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;

/**
 * Rights carried by a handle-table entry (as Fuchsia handle rights or seL4
 * capability rights). A grant may only narrow them.
 */
export const Rights = {
  READ: 1 << 0, // recv, recvfrom, poll for input
  WRITE: 1 << 1, // send, sendto
  CONTROL: 1 << 2, // bind, connect, setsockopt, fcntl
  GRANT: 1 << 3, // grant this handle to another domain
} as const;
export const RIGHTS_ALL = Rights.READ | Rights.WRITE | Rights.CONTROL | Rights.GRANT;

/** Largest UDP payload an IPv4 datagram can carry: 65535 - 20 (IP) - 8 (UDP). */
export const UDP_MAX_PAYLOAD = 65507;

/**
 * The errno field of a reply that delivers an injected fault instead of a
 * result (as a signal is delivered on return from a system call). No errno is
 * negative. The result is a `FaultDelivery`.
 */
export const FAULT_ERRNO = -1;

/** What a domain does when a fault is delivered to it (see docs/writing-scenarios.md). */
export type DomainFaultKind = 'throw' | 'exit' | 'hang' | 'oom';

export interface FaultDelivery {
  fault: DomainFaultKind;
  /** Why, for the domain's error and the report (e.g. 'fault: throw at syscall 100'). */
  detail: string;
}
