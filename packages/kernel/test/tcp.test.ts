/** Stream sockets through the kernel, on loopback: the BSD calls, their errno, and containment. */
import { describe, expect, it } from 'vitest';
import { AF_INET, Errno, MSG_DONTWAIT, O_NONBLOCK, F_SETFL, POLLIN, POLLOUT, SHUT_WR, SO_LINGER, SOCK_STREAM, SOCK_DGRAM, SOL_SOCKET } from '@moat/abi';
import { kernelWithDomains, type TestDomain } from './harness.js';

const lo = (port: number) => ({ addr: '127.0.0.1', port });

async function tcp(d: TestDomain): Promise<number> {
  const [errno, h] = await d.call('socket', AF_INET, SOCK_STREAM, 0);
  expect(errno).toBe(0);
  return h;
}

async function listener(d: TestDomain, port: number, backlog = 8): Promise<number> {
  const s = await tcp(d);
  expect((await d.call('bind', s, lo(port)))[0]).toBe(0);
  expect((await d.call('listen', s, backlog))[0]).toBe(0);
  return s;
}

/** Reads until `n` bytes or the end of the stream. */
async function readAll(d: TestDomain, h: number, n: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let got = 0;
  while (got < n) {
    const [errno, r] = await d.call('recvfrom', h, 65536, 0);
    expect(errno).toBe(0);
    if (r[0].length === 0) break;
    parts.push(r[0]);
    got += r[0].length;
  }
  const out = new Uint8Array(got);
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

describe('stream sockets', () => {
  it('connect, accept, send and recv both ways, then close in order', async () => {
    const { kernel, attach } = kernelWithDomains();
    const server = attach('server');
    const client = attach('client');
    const l = await listener(server, 8080);
    const c = await tcp(client);
    const accepting = server.call('accept', l);
    expect(await client.call('connect', c, lo(8080))).toEqual([0, 0]);
    const [aerr, [conn, peerAddr, peerPort]] = await accepting;
    expect(aerr).toBe(0);
    expect(peerAddr).toBe('127.0.0.1');
    expect((await client.call('getsockname', c))[1][1]).toBe(peerPort);
    expect((await client.call('getpeername', c))[1]).toEqual(['127.0.0.1', 8080]);
    // More than one MSS and more than the loopback MTU: cut into segments by the stack.
    const data = new Uint8Array(200_000).map((_, i) => (i * 31) & 0xff);
    const [serr, sent] = await client.call('sendto', c, data, 0, null);
    expect([serr, sent]).toEqual([0, data.length]);
    expect(await readAll(server, conn, data.length)).toEqual(data);
    // The kernel counts the socket data it copied in from each domain and out to it.
    const bytes = (name: string) => kernel.stats().domains.find((x) => x.name === name)!.bytes;
    expect(bytes('client').sent).toBe(data.length);
    expect(bytes('server').received).toBe(data.length);
    await server.call('sendto', conn, new TextEncoder().encode('ok'), 0, null);
    expect(new TextDecoder().decode(await readAll(client, c, 2))).toBe('ok');
    expect(await client.call('close', c)).toEqual([0, 0]);
    // The server reads the end of the stream, then closes too.
    expect((await server.call('recvfrom', conn, 100, 0))[1][0].length).toBe(0);
    expect(await server.call('close', conn)).toEqual([0, 0]);
    expect(kernel.stats().internalErrors).toBe(0);
  });

  it('refuses: a port nobody listens on, a port another domain holds, calls that make no sense', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const b = attach('b');
    await listener(a, 9000);
    const s = await tcp(b);
    expect((await b.call('bind', s, lo(9000)))[0]).toBe(Errno.EADDRINUSE);
    expect((await b.call('connect', s, lo(9001)))[0]).toBe(Errno.ECONNREFUSED);
    const t = await tcp(b);
    expect((await b.call('sendto', t, new Uint8Array(1), 0, null))[0]).toBe(Errno.EPIPE);
    expect((await b.call('recvfrom', t, 10, 0))[0]).toBe(Errno.ENOTCONN);
    expect((await b.call('accept', t))[0]).toBe(Errno.EINVAL);
    expect((await b.call('shutdown', t, SHUT_WR))[0]).toBe(Errno.ENOTCONN);
    expect((await b.call('getpeername', t))[0]).toBe(Errno.ENOTCONN);
    const [, u] = await b.call('socket', AF_INET, SOCK_DGRAM, 0);
    expect((await b.call('listen', u, 1))[0]).toBe(Errno.EOPNOTSUPP);
    expect((await b.call('accept', u))[0]).toBe(Errno.EOPNOTSUPP);
  });

  it('answers by the socket machine: what a listening or a connected socket may not do', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const l = await listener(a, 9050);
    expect((await a.call('connect', l, lo(9050)))[0]).toBe(Errno.EISCONN);
    expect((await a.call('bind', l, lo(9051)))[0]).toBe(Errno.EINVAL);
    const c = await tcp(a);
    const accepting = a.call('accept', l);
    await a.call('connect', c, lo(9050));
    await accepting;
    expect((await a.call('listen', c, 1))[0]).toBe(Errno.EINVAL);
    expect((await a.call('accept', c))[0]).toBe(Errno.EINVAL);
    expect((await a.call('connect', c, lo(9050)))[0]).toBe(Errno.EISCONN);
    // A listener shut for reading stops listening (as on Linux): accept is then refused.
    expect(await a.call('shutdown', l, 0)).toEqual([0, 0]);
    expect((await a.call('accept', l))[0]).toBe(Errno.EINVAL);
  });

  it('connects without blocking: EINPROGRESS, EALREADY, then writable, then EISCONN', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const l = await listener(a, 9100);
    const c = await tcp(a);
    await a.call('fcntl', c, F_SETFL, O_NONBLOCK);
    expect((await a.call('connect', c, lo(9100)))[0]).toBe(Errno.EINPROGRESS);
    const [, revents] = await a.call('poll', [[c, POLLOUT]], -1);
    expect(revents).toEqual([POLLOUT]);
    expect((await a.call('connect', c, lo(9100)))[0]).toBe(Errno.EISCONN);
    expect((await a.call('poll', [[l, POLLIN]], 0))[1]).toEqual([POLLIN]);
    expect((await a.call('recvfrom', c, 10, MSG_DONTWAIT))[0]).toBe(Errno.EAGAIN);
  });

  it('half-closes: after shutdown(SHUT_WR) the peer reads the end, and can still send', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const l = await listener(a, 9200);
    const c = await tcp(a);
    const accepting = a.call('accept', l);
    await a.call('connect', c, lo(9200));
    const conn = (await accepting)[1][0];
    expect(await a.call('shutdown', c, SHUT_WR)).toEqual([0, 0]);
    expect((await a.call('recvfrom', conn, 10, 0))[1][0].length).toBe(0);
    expect((await a.call('sendto', c, new Uint8Array(1), 0, null))[0]).toBe(Errno.EPIPE);
    await a.call('sendto', conn, new Uint8Array([42]), 0, null);
    expect([...(await a.call('recvfrom', c, 10, 0))[1][0]]).toEqual([42]);
  });

  it('resets the peer on close with SO_LINGER 1, as on close with data unread; 0 closes in order again', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const l = await listener(a, 9300);
    const pair = async () => {
      const c = await tcp(a);
      const accepting = a.call('accept', l);
      await a.call('connect', c, lo(9300));
      return [c, (await accepting)[1][0]] as const;
    };
    const [c, conn] = await pair();
    expect(await a.call('getsockopt', c, SOL_SOCKET, SO_LINGER)).toEqual([0, 0]);
    expect((await a.call('setsockopt', c, SOL_SOCKET, SO_LINGER, 5))[0]).toBe(Errno.EINVAL); // lingering some seconds: not offered
    expect(await a.call('setsockopt', c, SOL_SOCKET, SO_LINGER, 1)).toEqual([0, 0]);
    expect(await a.call('getsockopt', c, SOL_SOCKET, SO_LINGER)).toEqual([0, 1]);
    expect(await a.call('close', c)).toEqual([0, 0]);
    expect((await a.call('recvfrom', conn, 10, 0))[0]).toBe(Errno.ECONNRESET);
    const [c2, conn2] = await pair();
    await a.call('setsockopt', c2, SOL_SOCKET, SO_LINGER, 1);
    await a.call('setsockopt', c2, SOL_SOCKET, SO_LINGER, 0);
    await a.call('close', c2);
    expect((await a.call('recvfrom', conn2, 10, 0))[1][0].length).toBe(0); // the end of the stream
  });

  it('charges what a stream holds to its owner, and refuses a send past the quota with ENOBUFS', async () => {
    const { kernel, attach } = kernelWithDomains();
    const server = attach('server');
    const client = attach('client', { maxBufferBytes: 64 * 1024 });
    const l = await listener(server, 9310);
    const c = await tcp(client);
    const accepting = server.call('accept', l);
    await client.call('connect', c, lo(9310));
    const conn = (await accepting)[1][0];
    const accounting = (name: string) => kernel.stats().domains.find((d) => d.name === name)!.accounting;
    // The server does not read: what the client sends sits in the server's receive buffer, charged to the server.
    const [err, sent] = await client.call('sendto', c, new Uint8Array(200_000), MSG_DONTWAIT, null);
    expect(err).toBe(0);
    expect(sent).toBeLessThanOrEqual(64 * 1024); // no more than the client's quota was queued
    expect(sent).toBeGreaterThan(0);
    // Until the stack has carried some of it over (a poll or two).
    for (let i = 0; i < 1000 && accounting('server').streamBytes === 0; i++) await new Promise((r) => setImmediate(r));
    // Unacknowledged bytes are the client's; what arrived and is unread, the server's (a byte may be both for a while).
    expect(accounting('client').streamBytes).toBeLessThanOrEqual(64 * 1024);
    expect(accounting('server').streamBytes).toBeGreaterThan(0);
    expect(accounting('client').streamBytes + accounting('server').streamBytes).toBeGreaterThanOrEqual(sent);
    // Fill the client's share: once the stream holds its whole quota, a send is refused.
    let last: number[] = [];
    for (let i = 0; i < 64; i++) {
      last = await client.call('sendto', c, new Uint8Array(64 * 1024), MSG_DONTWAIT, null);
      if (last[0] !== 0) break;
    }
    expect([Errno.ENOBUFS, Errno.EAGAIN]).toContain(last[0]);
    expect(accounting('client').streamBytes).toBeLessThanOrEqual(64 * 1024);
    // Reading gives the bytes back to the server's account.
    const before = accounting('server').streamBytes;
    const [, [got]] = await server.call('recvfrom', conn, 10_000, 0);
    expect(accounting('server').streamBytes).toBe(before - got.length);
    await client.call('close', c);
    await server.call('close', conn);
    expect(accounting('client').streamBytes).toBe(0);
    expect(accounting('server').streamBytes).toBe(0);
  });

  it('resets the connections of a domain that dies: its peer gets ECONNRESET, nothing leaks', async () => {
    const { kernel, attach } = kernelWithDomains();
    const server = attach('server');
    const victim = attach('victim');
    const l = await listener(server, 9300);
    const c = await tcp(victim);
    const accepting = server.call('accept', l);
    await victim.call('connect', c, lo(9300));
    const conn = (await accepting)[1][0];
    await victim.call('sendto', c, new Uint8Array(1000), 0, null);
    expect((await readAll(server, conn, 1000)).length).toBe(1000);
    const waiting = server.call('recvfrom', conn, 10_000, 0);
    await new Promise((r) => setImmediate(r));
    kernel.detach('victim', 'killed');
    expect((await waiting)[0]).toBe(Errno.ECONNRESET);
    const stats = kernel.stats();
    expect(stats.leaks).toEqual([]);
    expect(stats.domains.find((d) => d.name === 'victim')!.accounting).toEqual({ handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, streamBytes: 0, pendingCalls: 0 });
  });
});
