/**
 * The syscall handlers. Each receives arguments that already fit the call's
 * schema; it checks handles and rights through the caller's own table, then
 * acts. No handler trusts anything else a domain says.
 */
import {
  AF_INET,
  Errno,
  F_GETFL,
  F_SETFL,
  IPPROTO_ICMP,
  IPPROTO_IP,
  IPPROTO_UDP,
  IP_MTU_DISCOVER,
  IP_PMTUDISC_DO,
  IP_PMTUDISC_DONT,
  MSG_DONTWAIT,
  MSG_PEEK,
  MSG_TRUNC,
  O_NONBLOCK,
  POLLERR,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  Rights,
  SO_ERROR,
  SO_RCVBUF,
  SO_RCVTIMEO,
  SO_SNDBUF,
  SO_SNDTIMEO,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  UDP_MAX_PAYLOAD,
  type SockAddr,
  type SyscallName,
} from '@moat/abi';
import { formatIpv4Address, parseIpv4Address, type Endpoint } from '@moat/netstack';
import type { Domain } from './domain.js';
import { KSocket } from './ksocket.js';
import type { Kernel } from './kernel.js';
import { fail, ok, type Done, type Outcome } from './outcome.js';

type Handler = (k: Kernel, d: Domain, args: any[]) => Outcome;

/** SOCK_NONBLOCK may be or'ed into socket()'s type, as on Linux. */
const SOCK_NONBLOCK = O_NONBLOCK;
const KNOWN_SEND_FLAGS = MSG_DONTWAIT;
const KNOWN_RECV_FLAGS = MSG_DONTWAIT | MSG_PEEK;
const MIN_RCVBUF = 2048;
const UDP_IP_HEADERS = 28;

function endpoint(addr: SockAddr): Endpoint {
  return { addr: parseIpv4Address(addr.addr), port: addr.port };
}

/** The socket behind `handle` in `d`'s own table, if `d` holds it with `rights`. */
function resolve(d: Domain, handle: unknown, rights: number): KSocket | Done {
  const entry = d.table.lookup(handle);
  if (!entry) return fail(Errno.EBADF);
  if (!(entry.object instanceof KSocket)) return fail(Errno.ENOTSOCK);
  if ((entry.rights & rights) !== rights) return fail(Errno.EACCES);
  return entry.object;
}

const isDone = (x: KSocket | Done): x is Done => !(x instanceof KSocket);

/** A pending ICMP error is reported once, by the next call that can report it. */
function takePendingError(s: KSocket): Done | null {
  if (!s.sock.pendingError) return null;
  const errno = Errno[s.sock.pendingError];
  s.sock.pendingError = null;
  return fail(errno);
}

/**
 * Runs `attempt` now; if it would block, a non-blocking call fails with
 * `wouldBlock` and a blocking one parks until it succeeds or its timeout.
 */
function blockOr(k: Kernel, s: KSocket, flags: number, timeoutMs: number, wouldBlock: number, attempt: () => Done | null): Outcome {
  const now = attempt();
  if (now) return now;
  if (s.nonblocking || flags & MSG_DONTWAIT) return fail(wouldBlock);
  return {
    blocked: {
      retry: attempt,
      deadline: timeoutMs > 0 ? k.now() + timeoutMs : undefined,
      onTimeout: fail(Errno.EAGAIN),
    },
  };
}

export const HANDLERS: Record<SyscallName, Handler> = {
  null: () => ok(0),

  socket(k, d, [family, type, protocol]) {
    if (family !== AF_INET) return fail(Errno.EAFNOSUPPORT);
    const base = type & ~SOCK_NONBLOCK;
    if (base === SOCK_STREAM) return fail(Errno.EPROTONOSUPPORT); // TCP arrives with the stream-socket issue
    if (base !== SOCK_DGRAM || (protocol !== 0 && protocol !== IPPROTO_UDP && protocol !== IPPROTO_ICMP)) return fail(Errno.EPROTONOSUPPORT);
    const allocate = (n: number) => k.pool.allocate(n, d.account);
    // SOCK_DGRAM with IPPROTO_ICMP is Linux's unprivileged ping socket.
    const s = new KSocket(d, protocol === IPPROTO_ICMP ? k.stack.pingSocket(allocate) : k.stack.udpSocket(allocate));
    s.nonblocking = (type & SOCK_NONBLOCK) !== 0;
    const handle = d.table.insert({ object: s, rights: Rights.READ | Rights.WRITE | Rights.CONTROL | Rights.GRANT });
    if (handle === null) return fail(Errno.EMFILE);
    d.account.sockets++;
    return ok(handle);
  },

  bind(k, d, [h, addr]) {
    const s = resolve(d, h, Rights.CONTROL);
    if (isDone(s)) return s;
    const err = k.stack.bind(s.sock, endpoint(addr));
    return err ? fail(Errno[err]) : ok();
  },

  connect(k, d, [h, addr]) {
    const s = resolve(d, h, Rights.CONTROL);
    if (isDone(s)) return s;
    const err = k.stack.connect(s.sock, endpoint(addr));
    return err ? fail(Errno[err]) : ok();
  },

  sendto(k, d, [h, data, flags, addr]) {
    const s = resolve(d, h, Rights.WRITE);
    if (isDone(s)) return s;
    if (flags & ~KNOWN_SEND_FLAGS) return fail(Errno.EINVAL);
    const dst = addr ? endpoint(addr) : s.sock.remote;
    if (!dst) return fail(Errno.EDESTADDRREQ);
    const pending = takePendingError(s);
    if (pending) return pending;
    if ((data as Uint8Array).length > UDP_MAX_PAYLOAD) return fail(Errno.EMSGSIZE);
    // A datagram larger than the domain's whole buffer share could never be sent: don't wait for it.
    if (k.pool.chargeFor(data.length + UDP_IP_HEADERS) > d.account.limits.maxBufferBytes) return fail(Errno.ENOBUFS);
    return blockOr(k, s, flags, s.sndtimeoMs, Errno.ENOBUFS, () => {
      if (s.closed) return fail(Errno.ECONNRESET);
      const sent = k.stack.send(s.sock, data, dst, (n) => k.pool.allocate(n, d.account));
      if (sent.ok) return ok(data.length);
      // No buffer now: a blocking socket waits for one, as the ENOBUFS rule allows.
      return sent.errno === 'ENOBUFS' ? null : fail(Errno[sent.errno]);
    });
  },

  recvfrom(k, d, [h, maxlen, flags]) {
    const s = resolve(d, h, Rights.READ);
    if (isDone(s)) return s;
    if (flags & ~KNOWN_RECV_FLAGS) return fail(Errno.EINVAL);
    return blockOr(k, s, flags, s.rcvtimeoMs, Errno.EAGAIN, () => {
      if (s.closed) return fail(Errno.ECONNRESET);
      const pending = takePendingError(s);
      if (pending) return pending;
      const head = flags & MSG_PEEK ? s.sock.peek() : s.sock.dequeue();
      if (!head) return null;
      const bytes = head.buffer.bytes;
      const truncated = bytes.length > maxlen;
      const data = truncated ? bytes.subarray(0, maxlen) : bytes;
      // The reply encoder copies `data` out; only then may the buffer be cleared and reused.
      return ok([data, formatIpv4Address(head.from.addr), head.from.port, truncated ? MSG_TRUNC : 0], () => {
        if (!(flags & MSG_PEEK)) head.buffer.release();
      });
    });
  },

  close(k, d, [h]) {
    const entry = d.table.remove(h);
    if (!entry) return fail(Errno.EBADF);
    const s = entry.object;
    if (entry.grantedBy) {
      const i = s.grants.findIndex((g) => g.domain === d && g.handle === h);
      if (i >= 0) s.grants.splice(i, 1);
    } else {
      k.destroySocket(s);
    }
    return ok();
  },

  getsockname(_k, d, [h]) {
    const s = resolve(d, h, 0);
    if (isDone(s)) return s;
    const local = s.sock.local ?? { addr: 0, port: 0 };
    return ok([formatIpv4Address(local.addr), local.port]);
  },

  getpeername(_k, d, [h]) {
    const s = resolve(d, h, 0);
    if (isDone(s)) return s;
    if (!s.sock.remote) return fail(Errno.ENOTCONN);
    return ok([formatIpv4Address(s.sock.remote.addr), s.sock.remote.port]);
  },

  setsockopt(_k, d, [h, level, name, value]) {
    const s = resolve(d, h, Rights.CONTROL);
    if (isDone(s)) return s;
    if (level === IPPROTO_IP && name === IP_MTU_DISCOVER) {
      if (value !== IP_PMTUDISC_DO && value !== IP_PMTUDISC_DONT) return fail(Errno.EINVAL);
      s.sock.dontFragment = value === IP_PMTUDISC_DO;
      return ok();
    }
    if (level !== SOL_SOCKET) return fail(Errno.ENOPROTOOPT);
    switch (name) {
      case SO_RCVBUF:
        if (value < 0) return fail(Errno.EINVAL);
        s.sock.rcvbuf = Math.max(MIN_RCVBUF, Math.min(value, d.account.limits.maxBufferBytes));
        return ok();
      case SO_SNDBUF:
        if (value < 0) return fail(Errno.EINVAL);
        s.sndbuf = Math.max(MIN_RCVBUF, value);
        return ok();
      case SO_RCVTIMEO:
      case SO_SNDTIMEO:
        if (value < 0) return fail(Errno.EINVAL);
        if (name === SO_RCVTIMEO) s.rcvtimeoMs = value;
        else s.sndtimeoMs = value;
        return ok();
      default:
        return fail(Errno.ENOPROTOOPT);
    }
  },

  getsockopt(_k, d, [h, level, name]) {
    const s = resolve(d, h, 0);
    if (isDone(s)) return s;
    if (level === IPPROTO_IP && name === IP_MTU_DISCOVER) return ok(s.sock.dontFragment ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT);
    if (level !== SOL_SOCKET) return fail(Errno.ENOPROTOOPT);
    switch (name) {
      case SO_RCVBUF:
        return ok(s.sock.rcvbuf);
      case SO_SNDBUF:
        return ok(s.sndbuf);
      case SO_RCVTIMEO:
        return ok(s.rcvtimeoMs);
      case SO_SNDTIMEO:
        return ok(s.sndtimeoMs);
      case SO_ERROR: {
        const pending = s.sock.pendingError;
        s.sock.pendingError = null;
        return ok(pending ? Errno[pending] : 0);
      }
      default:
        return fail(Errno.ENOPROTOOPT);
    }
  },

  fcntl(_k, d, [h, cmd, arg]) {
    const s = resolve(d, h, cmd === F_GETFL ? 0 : Rights.CONTROL);
    if (isDone(s)) return s;
    if (cmd === F_GETFL) return ok(s.nonblocking ? O_NONBLOCK : 0);
    if (cmd === F_SETFL) {
      s.nonblocking = (arg & O_NONBLOCK) !== 0;
      return ok();
    }
    return fail(Errno.EINVAL);
  },

  poll(k, d, [fds, timeout]) {
    const attempt = (): Done | null => {
      let ready = 0;
      const revents = (fds as [unknown, number][]).map(([h, events]) => {
        const entry = d.table.lookup(h);
        if (!entry) return ready++, POLLNVAL;
        const s = entry.object;
        let r = 0;
        if (s.closed || s.sock.pendingError) r |= POLLERR;
        if (entry.rights & Rights.READ && s.sock.queuedDatagrams > 0) r |= POLLIN & events;
        if (entry.rights & Rights.WRITE && s.owner.account.bufferBytes < s.owner.account.limits.maxBufferBytes) r |= POLLOUT & events;
        if (r) ready++;
        return r;
      });
      return ready > 0 || timeout === 0 ? ok(revents) : null;
    };
    const now = attempt();
    if (now) return now;
    const deadline = timeout > 0 ? k.now() + timeout : undefined;
    return { blocked: { retry: attempt, deadline, onTimeout: ok(fds.map(() => 0)) } };
  },

  grant(k, d, [h, name, rights]) {
    const entry = d.table.lookup(h);
    if (!entry) return fail(Errno.EBADF);
    if (!(entry.rights & Rights.GRANT) || (rights & ~entry.rights) !== 0) return fail(Errno.EACCES);
    const target = k.domain(name);
    if (!target) return fail(Errno.ESRCH);
    if (target === d) return fail(Errno.EINVAL);
    const s = entry.object;
    const granted = target.table.insert({ object: s, rights, grantedBy: { domain: d.name, handle: h as number } });
    if (granted === null) return fail(Errno.EMFILE);
    s.grants.push({ domain: target, handle: granted });
    return ok(granted);
  },

  revoke(k, d, [h, name]) {
    const entry = d.table.lookup(h);
    if (!entry) return fail(Errno.EBADF);
    if (!(entry.rights & Rights.GRANT)) return fail(Errno.EACCES);
    const target = k.domain(name);
    if (!target) return fail(Errno.ESRCH);
    const s = entry.object;
    let revoked = 0;
    for (let i = s.grants.length - 1; i >= 0; i--) {
      const g = s.grants[i]!;
      if (g.domain !== target || target.table.lookup(g.handle)?.grantedBy?.domain !== d.name) continue;
      target.table.remove(g.handle);
      s.grants.splice(i, 1);
      revoked++;
    }
    return ok(revoked);
  },

  stats(_k, d) {
    return ok(d.account.snapshot());
  },
};
