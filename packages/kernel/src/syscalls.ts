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
  IPPROTO_TCP,
  IPPROTO_UDP,
  IP_MTU_DISCOVER,
  IP_PMTUDISC_DO,
  IP_PMTUDISC_DONT,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  MSG_PEEK,
  MSG_READAHEAD,
  READAHEAD_MAX_BYTES,
  MSG_TRUNC,
  O_NONBLOCK,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  Rights,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_LINGER,
  SO_RCVBUF,
  SO_RCVTIMEO,
  SO_REUSEADDR,
  SO_SNDBUF,
  SO_SNDTIMEO,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
  UDP_MAX_PAYLOAD,
  type SockAddr,
  type SyscallName,
} from '@moat/abi';
import { DEFAULT_TCP_CONFIG, formatIpv4Address, parseIpv4Address, socketCallAnswer, type Endpoint, type SocketCall, type SocketState, type TcpSocket } from '@moat/netstack';
import type { Domain } from './domain.js';
import { KSocket } from './ksocket.js';
import type { Kernel } from './kernel.js';
import { fail, ok, type Done, type Outcome } from './outcome.js';

type Handler = (k: Kernel, d: Domain, args: any[]) => Outcome;

const KNOWN_SEND_FLAGS = MSG_DONTWAIT | MSG_NOSIGNAL;
const KNOWN_RECV_FLAGS = MSG_DONTWAIT | MSG_PEEK | MSG_READAHEAD;
const MIN_RCVBUF = 2048;
const UDP_IP_HEADERS = 28;
const EMPTY = new Uint8Array(0);

function endpoint(addr: SockAddr): Endpoint {
  return { addr: parseIpv4Address(addr.addr), port: addr.port };
}

const wire = (e: Endpoint | null) => (e ? [formatIpv4Address(e.addr), e.port] : ['0.0.0.0', 0]);

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
  const dgram = s.dgram;
  if (!dgram?.pendingError) return null;
  const errno = Errno[dgram.pendingError];
  dgram.pendingError = null;
  return fail(errno);
}

/** What a failed stream connection reports (ECONNRESET, ECONNREFUSED, ETIMEDOUT, EPIPE). */
function streamError(t: TcpSocket): number | undefined {
  const err = t.conn?.error;
  return err ? Errno[err] : undefined;
}

/**
 * A stream socket's state in its life machine, after telling the machine
 * what the connection has done since the last call (established, failed,
 * the peer's FIN).
 */
function lifeState(s: KSocket): SocketState {
  const life = s.life!;
  const conn = s.stream!.conn;
  const state = () => life.getSnapshot().value as SocketState;
  if (conn) {
    if (state() === 'connecting' && conn.established) life.send({ type: 'CONNECTED' });
    if (conn.error && ['connecting', 'connected', 'readShut', 'writeShut'].includes(state())) life.send({ type: 'CONNECTION_FAILED', error: conn.error });
    if (conn.peerClosed && (state() === 'connected' || state() === 'writeShut')) life.send({ type: 'PEER_CLOSED' });
  }
  return state();
}

/** The errno the socket machine gives `call` in the socket's state, or null when the state allows it. */
function refusedByState(s: KSocket, call: SocketCall): Done | null {
  const answer = socketCallAnswer(lifeState(s), call);
  return answer === 'ok' ? null : fail(Errno[answer]);
}

/**
 * Runs `attempt` now; if it would block, a non-blocking call fails with
 * `wouldBlock` and a blocking one parks until it succeeds or its timeout.
 */
function blockOr(k: Kernel, s: KSocket, flags: number, timeoutMs: number, wouldBlock: number, attempt: () => Done | null, onTimeout = fail(Errno.EAGAIN)): Outcome {
  const now = attempt();
  if (now) return now;
  if (s.nonblocking || flags & MSG_DONTWAIT) return fail(wouldBlock);
  return { blocked: { retry: attempt, deadline: timeoutMs > 0 ? k.now() + timeoutMs : undefined, onTimeout } };
}

export const HANDLERS: Record<SyscallName, Handler> = {
  null: () => ok(0),

  socket(k, d, [family, type, protocol]) {
    if (family !== AF_INET) return fail(Errno.EAFNOSUPPORT);
    const base = type & ~SOCK_NONBLOCK;
    const allocate = (n: number) => k.pool.allocate(n, d.account);
    let sock;
    if (base === SOCK_STREAM && (protocol === 0 || protocol === IPPROTO_TCP)) sock = k.stack.tcp.socket(allocate);
    else if (base === SOCK_DGRAM && (protocol === 0 || protocol === IPPROTO_UDP)) sock = k.stack.udpSocket(allocate);
    // SOCK_DGRAM with IPPROTO_ICMP is Linux's unprivileged ping socket.
    else if (base === SOCK_DGRAM && protocol === IPPROTO_ICMP) sock = k.stack.pingSocket(allocate);
    else return fail(Errno.EPROTONOSUPPORT);
    const s = new KSocket(d, sock);
    s.nonblocking = (type & SOCK_NONBLOCK) !== 0;
    const handle = d.table.insert({ object: s, rights: Rights.READ | Rights.WRITE | Rights.CONTROL | Rights.GRANT });
    if (handle === null) return fail(Errno.EMFILE);
    d.account.sockets++;
    if (s.stream) k.trackStream(s);
    return ok(handle);
  },

  bind(k, d, [h, addr]) {
    const s = resolve(d, h, Rights.CONTROL);
    if (isDone(s)) return s;
    if (!s.stream) {
      const err = k.stack.bind(s.dgram!, endpoint(addr));
      return err ? fail(Errno[err]) : ok();
    }
    const refused = refusedByState(s, 'bind');
    if (refused) return refused;
    const err = k.stack.tcp.bind(s.stream, endpoint(addr));
    if (err) return fail(Errno[err]);
    s.life!.send({ type: 'BIND' });
    return ok();
  },

  connect(k, d, [h, addr]) {
    const s = resolve(d, h, Rights.CONTROL);
    if (isDone(s)) return s;
    const t = s.stream;
    if (!t) {
      const err = k.stack.connect(s.dgram!, endpoint(addr));
      return err ? fail(Errno[err]) : ok();
    }
    const state = lifeState(s);
    const answer = socketCallAnswer(state, 'connect');
    // A blocking connect() while one is in progress waits for it; only a non-blocking one hears EALREADY.
    if (answer !== 'ok' && !(answer === 'EALREADY' && !s.nonblocking)) return fail(Errno[answer]);
    if (state !== 'connecting') {
      const err = k.stack.tcp.connect(t, endpoint(addr));
      if (err) return fail(Errno[err]);
      s.life!.send({ type: 'CONNECT' });
    }
    const conn = t.conn!;
    // Blocks until the handshake ends; SO_SNDTIMEO bounds the wait (then EINPROGRESS, as on Linux).
    return blockOr(
      k,
      s,
      0,
      s.sndtimeoMs,
      Errno.EINPROGRESS,
      () => (conn.established ? ok() : conn.closed ? fail(streamError(t) ?? Errno.ECONNREFUSED) : null),
      fail(Errno.EINPROGRESS),
    );
  },

  listen(k, d, [h, backlog]) {
    const s = resolve(d, h, Rights.CONTROL);
    if (isDone(s)) return s;
    if (!s.stream) return fail(Errno.EOPNOTSUPP);
    const refused = refusedByState(s, 'listen');
    if (refused) return refused;
    const err = k.stack.tcp.listen(s.stream, backlog);
    if (err) return fail(Errno[err]);
    s.life!.send({ type: 'LISTEN' });
    return ok();
  },

  accept(k, d, [h]) {
    const s = resolve(d, h, Rights.READ);
    if (isDone(s)) return s;
    const t = s.stream;
    if (!t) return fail(Errno.EOPNOTSUPP);
    const refused = refusedByState(s, 'accept');
    if (refused) return refused;
    return blockOr(k, s, 0, s.rcvtimeoMs, Errno.EAGAIN, () => {
      if (s.closed) return fail(Errno.ECONNRESET);
      if (!t.listener?.ready.length) return null;
      if (d.account.chargedHandles >= d.account.limits.maxHandles) return fail(Errno.EMFILE); // the connection stays queued
      const accepted = k.stack.tcp.accept(t, (n) => k.pool.allocate(n, d.account))!;
      const child = new KSocket(d, accepted, true);
      const handle = d.table.insert({ object: child, rights: Rights.READ | Rights.WRITE | Rights.CONTROL | Rights.GRANT })!;
      d.account.sockets++;
      k.trackStream(child);
      k.chargeStream(child); // what arrived before accept() is the acceptor's from now on
      return ok([handle, ...wire(accepted.remote)]);
    });
  },

  sendto(k, d, [h, data, flags, addr]) {
    const s = resolve(d, h, Rights.WRITE);
    if (isDone(s)) return s;
    if (flags & ~KNOWN_SEND_FLAGS) return fail(Errno.EINVAL);
    if (s.stream) return sendStream(k, s, s.stream, data, flags);
    const dgram = s.dgram!;
    const dst = addr ? endpoint(addr) : dgram.remote;
    if (!dst) return fail(Errno.EDESTADDRREQ);
    const pending = takePendingError(s);
    if (pending) return pending;
    if ((data as Uint8Array).length > UDP_MAX_PAYLOAD) return fail(Errno.EMSGSIZE);
    // A datagram larger than the domain's whole buffer share could never be sent: don't wait for it.
    if (k.pool.chargeFor(data.length + UDP_IP_HEADERS) > d.account.limits.maxBufferBytes) return fail(Errno.ENOBUFS);
    return blockOr(k, s, flags, s.sndtimeoMs, Errno.ENOBUFS, () => {
      if (s.closed) return fail(Errno.ECONNRESET);
      const sent = k.stack.send(dgram, data, dst, (n) => k.pool.allocate(n, d.account));
      if (sent.ok) return ok(data.length);
      // No buffer now: a blocking socket waits for one, as the ENOBUFS rule allows.
      return sent.errno === 'ENOBUFS' ? null : fail(Errno[sent.errno]);
    });
  },

  recvfrom(k, d, [h, maxlen, flags]) {
    const s = resolve(d, h, Rights.READ);
    if (isDone(s)) return s;
    if (flags & ~KNOWN_RECV_FLAGS) return fail(Errno.EINVAL);
    // Read-ahead only where no other domain could read the stream: the bytes go to this domain for good.
    if (s.stream) return recvStream(k, s, s.stream, maxlen, s.owner === d && s.grants.length === 0 ? flags : flags & ~MSG_READAHEAD);
    const dgram = s.dgram!;
    return blockOr(k, s, flags, s.rcvtimeoMs, Errno.EAGAIN, () => {
      if (s.closed) return fail(Errno.ECONNRESET);
      const pending = takePendingError(s);
      if (pending) return pending;
      const head = flags & MSG_PEEK ? dgram.peek() : dgram.dequeue();
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

  shutdown(k, d, [h, how]) {
    const s = resolve(d, h, Rights.CONTROL);
    if (isDone(s)) return s;
    if (how !== SHUT_RD && how !== SHUT_WR && how !== SHUT_RDWR) return fail(Errno.EINVAL);
    const t = s.stream;
    if (!t) return s.dgram!.remote ? ok() : fail(Errno.ENOTCONN);
    const state = lifeState(s);
    const refused = refusedByState(s, 'shutdown');
    if (refused) return refused;
    s.life!.send({ type: how === SHUT_RD ? 'SHUT_RD' : how === SHUT_WR ? 'SHUT_WR' : 'SHUT_RDWR' });
    if (state === 'listening') {
      if (how !== SHUT_WR) k.stack.tcp.stopListening(t); // Linux: a listener shut for reading stops listening
      return ok();
    }
    if (how !== SHUT_WR) s.readShut = true;
    if (how !== SHUT_RD && !s.writeShut && t.conn) {
      s.writeShut = true;
      t.conn.close(k.now());
    }
    return ok();
  },

  close(k, d, [h]) {
    const entry = d.table.remove(h);
    if (!entry) return fail(Errno.EBADF);
    const s = entry.object;
    if (entry.grantedBy) {
      const i = s.grants.findIndex((g) => g.domain === d && g.handle === h);
      if (i >= 0) s.grants.splice(i, 1);
    } else {
      // Closing with data unread resets the peer, as Linux does, and so does SO_LINGER 1; otherwise the connection closes in order.
      k.destroySocket(s, s.abortOnClose || (s.stream?.conn?.readable ?? 0) > 0);
      s.life?.send({ type: 'CLOSE' });
    }
    return ok();
  },

  getsockname(_k, d, [h]) {
    const s = resolve(d, h, 0);
    if (isDone(s)) return s;
    return ok(wire(s.sock.local));
  },

  getpeername(_k, d, [h]) {
    const s = resolve(d, h, 0);
    if (isDone(s)) return s;
    const t = s.stream;
    const remote = t ? (t.conn?.established ? t.remote : null) : s.dgram!.remote;
    if (!remote) return fail(Errno.ENOTCONN);
    return ok(wire(remote));
  },

  setsockopt(_k, d, [h, level, name, value]) {
    const s = resolve(d, h, Rights.CONTROL);
    if (isDone(s)) return s;
    const t = s.stream;
    if (level === IPPROTO_IP && name === IP_MTU_DISCOVER && s.dgram) {
      if (value !== IP_PMTUDISC_DO && value !== IP_PMTUDISC_DONT) return fail(Errno.EINVAL);
      s.dgram.dontFragment = value === IP_PMTUDISC_DO;
      return ok();
    }
    if (level === IPPROTO_TCP && name === TCP_NODELAY && t) return setStreamOption(t, 'noDelay', value !== 0);
    if (level !== SOL_SOCKET) return fail(Errno.ENOPROTOOPT);
    if (value < 0) return fail(Errno.EINVAL);
    switch (name) {
      case SO_RCVBUF: {
        const bytes = Math.max(MIN_RCVBUF, Math.min(value, d.account.limits.maxBufferBytes));
        if (t) t.config.rcvBuf = bytes; // for connections made from now on
        else s.dgram!.rcvbuf = bytes;
        return ok();
      }
      case SO_SNDBUF:
        s.sndbuf = Math.max(MIN_RCVBUF, Math.min(value, d.account.limits.maxBufferBytes));
        if (t) t.config.sndBuf = s.sndbuf;
        return ok();
      case SO_RCVTIMEO:
        s.rcvtimeoMs = value;
        return ok();
      case SO_SNDTIMEO:
        s.sndtimeoMs = value;
        return ok();
      case SO_REUSEADDR:
        s.reuseAddr = value !== 0;
        if (t) t.reuseAddr = s.reuseAddr;
        return ok();
      case SO_KEEPALIVE:
        return t ? setStreamOption(t, 'keepAlive', value !== 0) : ok();
      case SO_LINGER:
        if (value > 1) return fail(Errno.EINVAL);
        s.abortOnClose = value === 1;
        return ok();
      default:
        return fail(Errno.ENOPROTOOPT);
    }
  },

  getsockopt(_k, d, [h, level, name]) {
    const s = resolve(d, h, 0);
    if (isDone(s)) return s;
    const t = s.stream;
    if (level === IPPROTO_IP && name === IP_MTU_DISCOVER && s.dgram) return ok(s.dgram.dontFragment ? IP_PMTUDISC_DO : IP_PMTUDISC_DONT);
    if (level === IPPROTO_TCP && name === TCP_NODELAY && t) return ok(streamOption(t, 'noDelay') ? 1 : 0);
    if (level !== SOL_SOCKET) return fail(Errno.ENOPROTOOPT);
    switch (name) {
      case SO_RCVBUF:
        return ok(t ? (t.config.rcvBuf ?? DEFAULT_TCP_CONFIG.rcvBuf) : s.dgram!.rcvbuf);
      case SO_SNDBUF:
        return ok(t ? (t.config.sndBuf ?? DEFAULT_TCP_CONFIG.sndBuf) : s.sndbuf);
      case SO_RCVTIMEO:
        return ok(s.rcvtimeoMs);
      case SO_SNDTIMEO:
        return ok(s.sndtimeoMs);
      case SO_REUSEADDR:
        return ok(s.reuseAddr ? 1 : 0);
      case SO_KEEPALIVE:
        return ok(t && streamOption(t, 'keepAlive') ? 1 : 0);
      case SO_LINGER:
        return ok(s.abortOnClose ? 1 : 0);
      case SO_ERROR: {
        if (t) return ok(streamError(t) ?? 0);
        const pending = s.dgram!.pendingError;
        s.dgram!.pendingError = null;
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
        const r = readiness(entry.object, entry.rights) & (events | POLLERR | POLLHUP);
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
    const granted = target.table.insert({ object: s, rights, grantedBy: { domain: d.name, handle: h as number }, payer: d.account });
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
    // What it granted that domain, and (as seL4's revoke) everything granted on from those entries, at any depth.
    const gone = new Set<string>();
    let revoked = 0;
    for (let changed = true; changed; ) {
      changed = false;
      for (let i = s.grants.length - 1; i >= 0; i--) {
        const g = s.grants[i]!;
        const by = g.domain.table.lookup(g.handle)?.grantedBy;
        const direct = g.domain === target && by?.domain === d.name && by.handle === h;
        const derived = by !== undefined && gone.has(`${by.domain}:${by.handle}`);
        if (!direct && !derived) continue;
        g.domain.table.remove(g.handle);
        s.grants.splice(i, 1);
        gone.add(`${g.domain.name}:${g.handle}`);
        if (direct) revoked++;
        changed = true;
      }
    }
    return ok(revoked);
  },

  stats(_k, d) {
    return ok(d.account.snapshot());
  },
};

/**
 * send on a stream: copies as much as the send buffer takes; a blocking send
 * waits until all of it is taken (the stack cuts it into segments of at most
 * the MSS as the windows allow), a non-blocking one returns what was taken, or
 * EAGAIN when nothing was.
 */
function sendStream(k: Kernel, s: KSocket, t: TcpSocket, data: Uint8Array, flags: number): Outcome {
  // Never connected, or shut for writing: EPIPE, as Linux answers.
  const refused = refusedByState(s, 'send');
  if (refused) return refused;
  const conn = t.conn;
  if (!conn) return fail(Errno.EPIPE);
  let sent = 0;
  const attempt = (): Done | null => {
    if (s.closed) return fail(Errno.ECONNRESET);
    const err = streamError(t);
    if (err !== undefined) return sent > 0 ? ok(sent) : fail(err);
    if (conn.closed) return sent > 0 ? ok(sent) : fail(Errno.EPIPE);
    if (!conn.established) return null; // still connecting
    // The domain's buffer quota bounds what it may queue in the kernel, as the send buffer does per socket.
    const room = s.owner.account.bufferRoom;
    if (room <= 0) return sent > 0 ? ok(sent) : fail(Errno.ENOBUFS);
    sent += conn.write(data.subarray(sent, sent + room));
    k.chargeStream(s);
    return sent === data.length ? ok(sent) : null;
  };
  const first = attempt();
  if (first) return first;
  if (s.nonblocking || flags & MSG_DONTWAIT) return sent > 0 ? ok(sent) : fail(Errno.EAGAIN);
  const timeoutMs = s.sndtimeoMs;
  return {
    blocked: {
      retry: attempt,
      deadline: timeoutMs > 0 ? k.now() + timeoutMs : undefined,
      // On SO_SNDTIMEO a blocking send returns what it sent so far, or EAGAIN.
      get onTimeout() {
        return sent > 0 ? ok(sent) : fail(Errno.EAGAIN);
      },
    },
  };
}

/**
 * A send ring record (see @moat/abi's send-ring): a blocking send of `data`
 * on `handle`, as the sendto frame [handle, data, 0, null] would be, but on a
 * stream only: a record on anything else fails with EOPNOTSUPP, since a
 * datagram's errors belong to its own call. `data` is a view of the ring,
 * copied into the send buffer, and stays in place while the record waits.
 */
export function sendRecord(k: Kernel, d: Domain, handle: number, data: Uint8Array): Outcome {
  const s = resolve(d, handle, Rights.WRITE);
  if (isDone(s)) return s;
  if (!s.stream) return fail(Errno.EOPNOTSUPP);
  return sendStream(k, s, s.stream, data, 0);
}

/** recv on a stream: up to `maxlen` bytes; an empty result is the end of the stream. */
function recvStream(k: Kernel, s: KSocket, t: TcpSocket, maxlen: number, flags: number): Outcome {
  const refused = refusedByState(s, 'recv');
  if (refused) return refused;
  const conn = t.conn;
  if (!conn || t.listener) return fail(Errno.ENOTCONN);
  const [addr, port] = wire(t.remote);
  return blockOr(k, s, flags, s.rcvtimeoMs, Errno.EAGAIN, () => {
    if (s.closed) return fail(Errno.ECONNRESET);
    if (s.readShut) return ok([EMPTY, addr, port, 0]);
    if (conn.readable > 0) {
      if (flags & MSG_PEEK) return ok([conn.peek(maxlen), addr, port, 0]);
      const ahead = flags & MSG_READAHEAD ? READAHEAD_MAX_BYTES : 0;
      const data = readStream(k, conn, maxlen + ahead);
      k.chargeStream(s);
      return ok(data.length > maxlen ? [data, addr, port, 0, maxlen] : [data, addr, port, 0]);
    }
    const err = streamError(t);
    if (err !== undefined) return fail(err);
    if (conn.atEof || conn.closed) return ok([EMPTY, addr, port, 0]);
    return null;
  });
}

/** Up to `maxlen` bytes off the stream, in the kernel's recv buffer (see Kernel.recvBuffer), not a buffer of their own. */
function readStream(k: Kernel, conn: NonNullable<TcpSocket['conn']>, maxlen: number): Uint8Array {
  const into = k.recvBuffer(Math.min(maxlen, conn.readable));
  return into.subarray(0, conn.readInto(into));
}

function setStreamOption(t: TcpSocket, name: 'noDelay' | 'keepAlive', value: boolean): Done {
  t.config[name] = value;
  t.conn?.setOption(name, value);
  return ok();
}

function streamOption(t: TcpSocket, name: 'noDelay' | 'keepAlive'): boolean {
  return t.conn ? t.conn.option(name) : !!t.config[name];
}

/** poll's answer for one socket, limited to what the handle's rights allow it to observe. */
function readiness(s: KSocket, rights: number): number {
  let r = 0;
  const t = s.stream;
  if (t) {
    const conn = t.conn;
    if (s.closed) return POLLERR | POLLHUP;
    if (t.listener) return rights & Rights.READ && t.listener.ready.length > 0 ? POLLIN : 0;
    if (!conn) return POLLOUT | POLLHUP; // as Linux answers for a socket never connected
    if (streamError(t) !== undefined) r |= POLLERR;
    if (rights & Rights.READ && (conn.readable > 0 || conn.atEof || s.readShut || conn.closed)) r |= POLLIN;
    if (rights & Rights.WRITE && conn.established && conn.writable > 0 && !s.writeShut) r |= POLLOUT;
    if (conn.closed || (conn.atEof && s.writeShut)) r |= POLLHUP;
    return r;
  }
  const dgram = s.dgram!;
  if (s.closed || dgram.pendingError) r |= POLLERR;
  if (rights & Rights.READ && dgram.queuedDatagrams > 0) r |= POLLIN;
  if (rights & Rights.WRITE && s.owner.account.bufferBytes < s.owner.account.limits.maxBufferBytes) r |= POLLOUT;
  return r;
}
