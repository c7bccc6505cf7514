/**
 * The syscall table: number, argument schema and the errno values each call
 * may return. The kernel validates every request against `args` before it
 * acts; libc builds requests from the same table.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { ErrnoName } from './errno.js';
import { SYS, type SyscallName } from './numbers.js';

export { SYS, SYSCALL_BY_NUMBER, type SyscallName } from './numbers.js';

const IPV4 = '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$';

/**
 * A handle is checked by the handle table, not by the schema, so that forged
 * handles of any shape (negative, fractional, out of range, not a number)
 * get EBADF as the threat model requires, never EINVAL.
 */
const Handle = Type.Unknown({ title: 'handle' });
const Int = (title: string) => Type.Integer({ title, minimum: -0x80000000, maximum: 0x7fffffff });
export const SockAddrSchema = Type.Object(
  {
    addr: Type.String({ pattern: IPV4, maxLength: 15 }),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
  },
  { additionalProperties: false, title: 'sockaddr' },
);
export type SockAddr = Static<typeof SockAddrSchema>;

/** Longest domain name a grant may name. */
export const DOMAIN_NAME_MAX = 64;
const DomainName = Type.String({ title: 'domain', minLength: 1, maxLength: DOMAIN_NAME_MAX });
const PollFd = Type.Tuple([Handle, Type.Integer({ minimum: 0, maximum: 0xffff })], { title: 'pollfd' });
/** Most descriptors one poll may watch. */
export const POLL_MAX_FDS = 256;

interface SyscallSpec {
  readonly no: number;
  readonly args: TSchema;
  readonly errors: readonly ErrnoName[];
}

/**
 * Errors any call can give: a malformed frame or argument (EINVAL), an unknown
 * call (ENOSYS), a frame over the size limit (EMSGSIZE), a full request queue
 * (EAGAIN), and EFAULT for a kernel bug caught while serving (counted in the
 * kernel's internalErrors, which tests require to stay at zero).
 */
export const COMMON_ERRORS = ['EINVAL', 'ENOSYS', 'EMSGSIZE', 'EAGAIN', 'EFAULT'] as const satisfies readonly ErrnoName[];
const HANDLE_ERRORS = ['EBADF', 'ENOTSOCK', 'EACCES'] as const satisfies readonly ErrnoName[];

export const SYSCALLS = {
  /** Does nothing; measures the channel. */
  null: { no: SYS.null, args: Type.Tuple([]), errors: [] },
  socket: {
    no: SYS.socket,
    args: Type.Tuple([Int('domain'), Int('type'), Int('protocol')]),
    errors: ['EAFNOSUPPORT', 'EPROTONOSUPPORT', 'EMFILE', 'ENOBUFS'],
  },
  bind: {
    no: SYS.bind,
    args: Type.Tuple([Handle, SockAddrSchema]),
    errors: [...HANDLE_ERRORS, 'EADDRINUSE', 'EADDRNOTAVAIL'],
  },
  connect: {
    no: SYS.connect,
    args: Type.Tuple([Handle, SockAddrSchema]),
    errors: [...HANDLE_ERRORS, 'EADDRINUSE', 'ENETUNREACH', 'EINPROGRESS', 'EALREADY', 'EISCONN', 'ECONNREFUSED', 'ETIMEDOUT', 'ECONNRESET'],
  },
  sendto: {
    no: SYS.sendto,
    args: Type.Tuple([Handle, Type.Uint8Array({ title: 'data' }), Int('flags'), Type.Union([SockAddrSchema, Type.Null()])]),
    errors: [...HANDLE_ERRORS, 'EDESTADDRREQ', 'EMSGSIZE', 'ENOBUFS', 'EAGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'],
  },
  recvfrom: {
    no: SYS.recvfrom,
    args: Type.Tuple([Handle, Type.Integer({ title: 'maxlen', minimum: 0, maximum: 0x7fffffff }), Int('flags')]),
    // EPIPE: a stream reset by its peer after the peer's FIN (CLOSE-WAIT), reported once, as Linux does.
    errors: [...HANDLE_ERRORS, 'EAGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNREFUSED', 'ECONNRESET', 'ENOTCONN', 'ETIMEDOUT', 'EPIPE'],
  },
  close: { no: SYS.close, args: Type.Tuple([Handle]), errors: ['EBADF'] },
  getsockname: { no: SYS.getsockname, args: Type.Tuple([Handle]), errors: [...HANDLE_ERRORS] },
  getpeername: { no: SYS.getpeername, args: Type.Tuple([Handle]), errors: [...HANDLE_ERRORS, 'ENOTCONN'] },
  setsockopt: {
    no: SYS.setsockopt,
    args: Type.Tuple([Handle, Int('level'), Int('optname'), Int('value')]),
    errors: [...HANDLE_ERRORS, 'ENOPROTOOPT'],
  },
  getsockopt: {
    no: SYS.getsockopt,
    args: Type.Tuple([Handle, Int('level'), Int('optname')]),
    errors: [...HANDLE_ERRORS, 'ENOPROTOOPT'],
  },
  fcntl: { no: SYS.fcntl, args: Type.Tuple([Handle, Int('cmd'), Int('arg')]), errors: [...HANDLE_ERRORS] },
  poll: {
    no: SYS.poll,
    args: Type.Tuple([Type.Array(PollFd, { title: 'fds', maxItems: POLL_MAX_FDS }), Int('timeout')]),
    errors: [],
  },
  grant: {
    no: SYS.grant,
    args: Type.Tuple([Handle, DomainName, Type.Integer({ title: 'rights', minimum: 0, maximum: 0xff })]),
    errors: [...HANDLE_ERRORS, 'ESRCH', 'EMFILE'],
  },
  revoke: { no: SYS.revoke, args: Type.Tuple([Handle, DomainName]), errors: [...HANDLE_ERRORS, 'ESRCH'] },
  /** The caller's own accounting: handles, buffers and bytes it holds. */
  stats: { no: SYS.stats, args: Type.Tuple([]), errors: [] },
  listen: {
    no: SYS.listen,
    args: Type.Tuple([Handle, Int('backlog')]),
    errors: [...HANDLE_ERRORS, 'EOPNOTSUPP', 'EINVAL', 'EADDRINUSE'],
  },
  /** Returns [handle, addr, port] of the new connection. */
  accept: { no: SYS.accept, args: Type.Tuple([Handle]), errors: [...HANDLE_ERRORS, 'EOPNOTSUPP', 'EINVAL', 'EAGAIN', 'EMFILE'] },
  shutdown: { no: SYS.shutdown, args: Type.Tuple([Handle, Int('how')]), errors: [...HANDLE_ERRORS, 'ENOTCONN', 'EINVAL'] },
} as const satisfies Record<SyscallName, SyscallSpec>;

export type SyscallArgs<N extends SyscallName> = Static<(typeof SYSCALLS)[N]['args']>;

/** The most items a request frame can have: its call id, its number and the longest argument list. */
export const MAX_REQUEST_ITEMS = 2 + Math.max(...Object.values(SYSCALLS).map((s) => (s.args as { maxItems?: number }).maxItems ?? 0));


/**
 * What `recvfrom` returns: the datagram, its sender, and MSG_TRUNC when the
 * buffer was short. With MSG_READAHEAD on a stream, `answered` may say that
 * only that many bytes of `data` answer the call: the rest is read-ahead, for
 * libc to keep. (One byte array for both, so that the kernel can read the
 * stream straight into the reply slot, where replyBytesAt says it goes.)
 */
export type RecvfromResult = [data: Uint8Array, addr: string, port: number, flags: number, answered?: number];
export type GetsocknameResult = [addr: string, port: number];
export type AcceptResult = [handle: number, addr: string, port: number];
export interface DomainAccounting {
  /** Entries in its own handle table. */
  handles: number;
  /** Entries it granted into other domains' tables: they count against its handle quota too. */
  grantedHandles: number;
  sockets: number;
  buffers: number;
  bufferBytes: number;
  /** Bytes its stream sockets hold in the kernel: send and receive buffers and out-of-order data. */
  streamBytes: number;
  pendingCalls: number;
}
