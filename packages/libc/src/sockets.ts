/**
 * The BSD socket API that domain code sees, built once from a table of
 * calls and offered twice: `SyncSockets` blocks the thread in each call,
 * `AsyncSockets` returns promises. Failures throw SyscallError with the
 * errno (`err.code === 'EAGAIN'`), as Node's own system errors do.
 */
import { SYS, type AcceptResult, type DomainAccounting, type GetsocknameResult, type RecvfromResult, type SockAddr } from '@moat/abi/core';
import type { Channel } from './channel.js';
import { alwaysInvolved, streamBatchingOf } from './stream-batching.js';

export type { SockAddr };

export interface Datagram {
  data: Uint8Array;
  from: SockAddr;
  /** MSG_TRUNC: the datagram was longer than maxlen and the rest is gone. */
  flags: number;
}

/** A connection accept() took from a listener's queue. */
export interface Accepted {
  handle: number;
  peer: SockAddr;
}

export interface PollFd {
  handle: number;
  events: number;
}

/** Each call: how its arguments become the syscall's, and how its result comes back. */
const CALLS = {
  null: { sys: SYS.null, args: () => [], result: (r: unknown) => r as number },
  socket: {
    sys: SYS.socket,
    args: (domain: number, type: number, protocol = 0) => [domain, type, protocol],
    result: (r: unknown) => r as number,
  },
  bind: { sys: SYS.bind, args: (h: number, addr: SockAddr) => [h, addr], result: () => undefined },
  connect: { sys: SYS.connect, args: (h: number, addr: SockAddr) => [h, addr], result: () => undefined },
  sendto: {
    sys: SYS.sendto,
    args: (h: number, data: Uint8Array, addr: SockAddr | null, flags = 0) => [h, data, flags, addr],
    result: (r: unknown) => r as number,
  },
  send: { sys: SYS.sendto, args: (h: number, data: Uint8Array, flags = 0) => [h, data, flags, null], result: (r: unknown) => r as number },
  recvfrom: {
    sys: SYS.recvfrom,
    args: (h: number, maxlen: number, flags = 0) => [h, maxlen, flags],
    result: (r: unknown): Datagram => {
      const [data, addr, port, flags] = r as RecvfromResult;
      return { data, from: { addr, port }, flags };
    },
  },
  recv: {
    sys: SYS.recvfrom,
    args: (h: number, maxlen: number, flags = 0) => [h, maxlen, flags],
    result: (r: unknown) => (r as RecvfromResult)[0],
  },
  close: { sys: SYS.close, args: (h: number) => [h], result: () => undefined },
  listen: { sys: SYS.listen, args: (h: number, backlog = 128) => [h, backlog], result: () => undefined },
  accept: {
    sys: SYS.accept,
    args: (h: number) => [h],
    result: (r: unknown): Accepted => {
      const [handle, addr, port] = r as AcceptResult;
      return { handle, peer: { addr, port } };
    },
  },
  shutdown: { sys: SYS.shutdown, args: (h: number, how: number) => [h, how], result: () => undefined },
  getsockname: { sys: SYS.getsockname, args: (h: number) => [h], result: (r: unknown): SockAddr => toAddr(r) },
  getpeername: { sys: SYS.getpeername, args: (h: number) => [h], result: (r: unknown): SockAddr => toAddr(r) },
  setsockopt: {
    sys: SYS.setsockopt,
    args: (h: number, level: number, name: number, value: number) => [h, level, name, value],
    result: () => undefined,
  },
  getsockopt: { sys: SYS.getsockopt, args: (h: number, level: number, name: number) => [h, level, name], result: (r: unknown) => r as number },
  fcntl: { sys: SYS.fcntl, args: (h: number, cmd: number, arg = 0) => [h, cmd, arg], result: (r: unknown) => r as number },
  poll: {
    sys: SYS.poll,
    args: (fds: readonly PollFd[], timeoutMs: number) => [fds.map((f) => [f.handle, f.events]), timeoutMs],
    result: (r: unknown) => r as number[],
  },
  grant: { sys: SYS.grant, args: (h: number, domain: string, rights: number) => [h, domain, rights], result: (r: unknown) => r as number },
  revoke: { sys: SYS.revoke, args: (h: number, domain: string) => [h, domain], result: (r: unknown) => r as number },
  stats: { sys: SYS.stats, args: () => [], result: (r: unknown) => r as DomainAccounting },
} satisfies Record<string, { sys: number; args: (...a: any[]) => unknown[]; result: (r: unknown) => unknown }>;

function toAddr(r: unknown): SockAddr {
  const [addr, port] = r as GetsocknameResult;
  return { addr, port };
}

type Calls = typeof CALLS;
export type SyncSockets = { [K in keyof Calls]: (...a: Parameters<Calls[K]['args']>) => ReturnType<Calls[K]['result']> };
export type AsyncSockets = { [K in keyof Calls]: (...a: Parameters<Calls[K]['args']>) => Promise<ReturnType<Calls[K]['result']>> };

/**
 * The most data one sendto request carries. A larger send (on a stream; no
 * datagram is this large) goes out as several requests, as a libc send()
 * loops over a short write: the kernel's frame limit stays small and a
 * blocking send still hands over the whole buffer.
 */
export const SEND_CHUNK_BYTES = 256 * 1024;

/**
 * The requests one send of `args` ([h, data, flags, addr]) becomes, one chunk
 * at a time; each yield gets back what the kernel took, or the error it
 * failed with (thrown in). It stops at a short write (a non-blocking send that
 * filled the buffer) and returns the total; an error after some chunks went
 * is reported as a short write too, as a libc send reports it.
 */
function* sendRequests(args: unknown[]): Generator<unknown[], number, number> {
  const data = args[1] as Uint8Array;
  let sent = 0;
  while (sent < data.length) {
    const want = Math.min(SEND_CHUNK_BYTES, data.length - sent);
    let took: number;
    try {
      took = yield [args[0], data.subarray(sent, sent + want), args[2], args[3]];
    } catch (err) {
      if (sent > 0) return sent;
      throw err;
    }
    sent += took;
    if (took < want) break;
  }
  return sent;
}

const isLargeSend = (sys: number, args: unknown[]) => sys === SYS.sendto && (args[1] as Uint8Array).length > SEND_CHUNK_BYTES;

export function syncSockets(channel: Channel): SyncSockets {
  const api: Record<string, unknown> = {};
  const batching = streamBatchingOf(channel);
  for (const [name, c] of Object.entries(CALLS) as [string, Calls[keyof Calls]][]) {
    const always = alwaysInvolved(name);
    /** The syscall's own result (a large send's: the bytes it took, over its requests). */
    const call = (args: unknown[], adopt?: (raw: unknown) => unknown): unknown => {
      if (!isLargeSend(c.sys, args)) return channel.callSync(c.sys, args, adopt);
      const plan = sendRequests(args);
      let step = plan.next();
      while (!step.done) {
        let took: number;
        try {
          took = channel.callSync(c.sys, step.value) as number;
        } catch (err) {
          step = plan.throw(err);
          continue;
        }
        step = plan.next(took);
      }
      return step.value;
    };
    api[name] = (...a: unknown[]) => {
      const args = (c.args as (...x: unknown[]) => unknown[])(...a);
      if (!always && !batching.busy) return c.result(call(args));
      const kept = batching.serveRecv(name, args);
      if (kept) return c.result(kept);
      // A blocking send on a proven stream goes into the send ring (behind the records before it); what the ring
      // did not take goes by call, and a call comes after the records queued on the handles it names.
      const queued = batching.queue(name, args);
      if (queued > 0 && queued === (args[1] as Uint8Array).length) return queued;
      const linger = batching.lingerBeforeClose(name, args);
      batching.before(name, args);
      if (linger) errnoOf(() => channel.callSync(SYS.setsockopt, linger)); // the close reports what is wrong with the handle
      if (queued > 0) {
        const data = args[1] as Uint8Array;
        try {
          return queued + (call([args[0], data.subarray(queued), args[2], args[3]]) as number);
        } catch {
          return queued; // an error after some bytes went is a short write, as a libc send reports it
        }
      }
      return c.result(batching.settle(name, args, call(batching.callArgs(name, args, true), batching.adopter(name, args))));
    };
  }
  return api as SyncSockets;
}

export function asyncSockets(channel: Channel): AsyncSockets {
  const api: Record<string, unknown> = {};
  const batching = streamBatchingOf(channel);
  for (const [name, c] of Object.entries(CALLS) as [string, Calls[keyof Calls]][]) {
    const always = alwaysInvolved(name);
    api[name] = (...a: unknown[]): Promise<unknown> => {
      try {
        const args = (c.args as (...x: unknown[]) => unknown[])(...a);
        // Most calls are the channel's promise alone, which resolves with the call's result.
        return always || batching.busy ? batched(args) : channel.callAsync(c.sys, args, c.result);
      } catch (err) {
        return Promise.reject(err);
      }
    };
    /** A call the stream batching of the blocking API is involved in (see stream-batching.ts). */
    const batched = async (args: unknown[]): Promise<unknown> => {
      // What the blocking API read ahead comes first; and a call comes after what it queued on the handles named.
      const kept = batching.serveRecv(name, args);
      if (kept) return c.result(kept);
      const linger = batching.lingerBeforeClose(name, args);
      batching.before(name, args);
      if (linger) await channel.callAsync(SYS.setsockopt, linger).catch(() => undefined); // the close reports what is wrong with the handle
      if (!isLargeSend(c.sys, args)) {
        return c.result(batching.settle(name, args, batching.received(name, args, await channel.callAsync(c.sys, batching.callArgs(name, args, false)))));
      }
      const plan = sendRequests(args);
      let step = plan.next();
      while (!step.done) {
        let took: number;
        try {
          took = (await channel.callAsync(c.sys, step.value)) as number;
        } catch (err) {
          step = plan.throw(err);
          continue;
        }
        step = plan.next(took);
      }
      return step.value;
    };
  }
  return api as AsyncSockets;
}

/** Runs `fn` and returns 0 when it succeeds or the errno it failed with; rethrows anything else. */
export function errnoOf(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (err) {
    if (err && typeof (err as { errno?: unknown }).errno === 'number' && (err as Error).name === 'SyscallError') {
      return (err as { errno: number }).errno;
    }
    throw err;
  }
}
