import { describe, expect, it } from 'vitest';
import {
  AF_INET,
  encodeRequest,
  Errno,
  F_GETFL,
  F_SETFL,
  MSG_DONTWAIT,
  MSG_PEEK,
  MSG_TRUNC,
  O_NONBLOCK,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  Rights,
  SO_ERROR,
  SO_RCVBUF,
  SO_RCVTIMEO,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  SYS,
} from '@moat/abi';
import { kernelWithDomains, type TestDomain } from './harness.js';

const lo = (port: number) => ({ addr: '127.0.0.1', port });
const bytes = (...b: number[]) => new Uint8Array(b);

async function udp(d: TestDomain, port?: number): Promise<number> {
  const [errno, h] = await d.call('socket', AF_INET, SOCK_DGRAM, 0);
  expect(errno).toBe(0);
  if (port !== undefined) expect((await d.call('bind', h, lo(port)))[0]).toBe(0);
  return h;
}

describe('socket creation and binding', () => {
  it('creates UDP, ping and TCP sockets, with Linux errnos for the rest', async () => {
    const { attach } = kernelWithDomains();
    const d = attach('a');
    expect((await d.call('socket', 10, SOCK_DGRAM, 0))[0]).toBe(Errno.EAFNOSUPPORT);
    expect((await d.call('socket', AF_INET, SOCK_STREAM, 0))[0]).toBe(0);
    expect((await d.call('socket', AF_INET, SOCK_STREAM, 17))[0]).toBe(Errno.EPROTONOSUPPORT);
    expect((await d.call('socket', AF_INET, SOCK_DGRAM, 6))[0]).toBe(Errno.EPROTONOSUPPORT);
    expect((await d.call('socket', AF_INET, SOCK_DGRAM, 1))[0]).toBe(0);
    expect((await d.call('socket', AF_INET, SOCK_DGRAM | O_NONBLOCK, 17))[0]).toBe(0);
  });

  it('binds port 0 to an ephemeral port and refuses a port in use, across domains', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const b = attach('b');
    const s = await udp(a);
    expect((await a.call('bind', s, lo(0)))[0]).toBe(0);
    const [, [addr, port]] = await a.call('getsockname', s);
    expect(addr).toBe('127.0.0.1');
    expect(port).toBeGreaterThanOrEqual(32768);
    expect((await a.call('bind', s, lo(9)))[0]).toBe(Errno.EINVAL);
    const t = await udp(b);
    expect((await b.call('bind', t, lo(port)))[0]).toBe(Errno.EADDRINUSE);
    expect((await b.call('bind', t, { addr: '10.0.0.1', port: 5 }))[0]).toBe(Errno.EADDRNOTAVAIL);
  });
});

describe('datagrams', () => {
  it('delivers a datagram through the stack with its sender', async () => {
    const { kernel, attach } = kernelWithDomains();
    const a = attach('a');
    const b = attach('b');
    const rx = await udp(b, 7000);
    const tx = await udp(a, 7001);
    expect(await a.call('sendto', tx, bytes(1, 2, 3), 0, lo(7000))).toEqual([0, 3]);
    const [errno, [data, addr, port, flags]] = await b.call('recvfrom', rx, 100, 0);
    expect(errno).toBe(0);
    expect([...data]).toEqual([1, 2, 3]);
    expect([addr, port, flags]).toEqual(['127.0.0.1', 7001, 0]);
    expect(kernel.stats().stack['in.udp']).toBe(1);
  });

  it('sends whole or not at all, and says why', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const s = await udp(a);
    expect((await a.call('sendto', s, new Uint8Array(65508), 0, lo(9)))[0]).toBe(Errno.EMSGSIZE);
    expect((await a.call('sendto', s, bytes(1), 0, null))[0]).toBe(Errno.EDESTADDRREQ);
    expect((await a.call('sendto', s, bytes(1), 0, { addr: '10.1.1.1', port: 9 }))[0]).toBe(Errno.ENETUNREACH);
    expect(await a.call('sendto', s, new Uint8Array(65507), 0, lo(9))).toEqual([0, 65507]);
  });

  it('peeks, truncates with MSG_TRUNC, and answers EAGAIN when empty and non-blocking', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const s = await udp(a, 7100);
    expect((await a.call('recvfrom', s, 10, MSG_DONTWAIT))[0]).toBe(Errno.EAGAIN);
    await a.call('sendto', s, bytes(1, 2, 3, 4), 0, lo(7100));
    const [, peeked] = await a.call('recvfrom', s, 10, MSG_PEEK);
    expect([...peeked[0]]).toEqual([1, 2, 3, 4]);
    const [, short] = await a.call('recvfrom', s, 2, 0);
    expect([...short[0]]).toEqual([1, 2]);
    expect(short[3]).toBe(MSG_TRUNC);
    expect(await a.call('fcntl', s, F_SETFL, O_NONBLOCK)).toEqual([0, 0]);
    expect(await a.call('fcntl', s, F_GETFL, 0)).toEqual([0, O_NONBLOCK]);
    expect((await a.call('recvfrom', s, 10, 0))[0]).toBe(Errno.EAGAIN);
  });

  it('blocks a recv until a datagram arrives, and times out with EAGAIN under SO_RCVTIMEO', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const b = attach('b');
    const s = await udp(a, 7200);
    const pending = a.call('recvfrom', s, 100, 0);
    const t = await udp(b);
    await b.call('sendto', t, bytes(9), 0, lo(7200));
    expect([...(await pending)[1][0]]).toEqual([9]);
    expect(await a.call('setsockopt', s, SOL_SOCKET, SO_RCVTIMEO, 5)).toEqual([0, 0]);
    expect((await a.call('recvfrom', s, 100, 0))[0]).toBe(Errno.EAGAIN);
  });

  it('gives a connected socket only its peer’s datagrams', async () => {
    const { kernel, attach } = kernelWithDomains();
    const a = attach('a');
    const s = await udp(a, 7300);
    expect((await a.call('getpeername', s))[0]).toBe(Errno.ENOTCONN);
    await a.call('connect', s, lo(7301));
    expect(await a.call('getpeername', s)).toEqual([0, ['127.0.0.1', 7301]]);
    const peer = await udp(a, 7301);
    const stranger = await udp(a, 7302);
    await a.call('sendto', stranger, bytes(6), 0, lo(7300));
    await a.call('sendto', peer, bytes(7), 0, lo(7300));
    const [, [data, , port]] = await a.call('recvfrom', s, 10, 0);
    expect([[...data], port]).toEqual([[7], 7301]);
    expect(kernel.stats().stack['drop.udp.noSocket']).toBe(1);
  });

  it('drops and counts datagrams beyond the receive FIFO', async () => {
    const { kernel, attach } = kernelWithDomains();
    const a = attach('a');
    const s = await udp(a, 7400);
    await a.call('setsockopt', s, SOL_SOCKET, SO_RCVBUF, 4096);
    for (let i = 0; i < 5; i++) await a.call('sendto', s, new Uint8Array(1000), 0, lo(7400));
    expect(kernel.stats().stack['drop.udp.queueFull']).toBe(1);
    expect(await a.call('getsockopt', s, SOL_SOCKET, SO_ERROR)).toEqual([0, 0]);
  });
});

describe('poll', () => {
  it('reports readiness, POLLNVAL for dead handles, and blocks until ready or timeout', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const s = await udp(a, 7500);
    expect(await a.call('poll', [[s, POLLIN | POLLOUT], [4242, POLLIN]], 0)).toEqual([0, [POLLOUT, POLLNVAL]]);
    const waiting = a.call('poll', [[s, POLLIN]], -1);
    const t = await udp(a);
    await a.call('sendto', t, bytes(1), 0, lo(7500));
    expect(await waiting).toEqual([0, [POLLIN]]);
    await a.call('recvfrom', s, 10, 0);
    expect(await a.call('poll', [[s, POLLIN]], 5)).toEqual([0, [0]]);
  });
});

describe('handles, rights and grants', () => {
  it('refuses forged, stale and foreign handles with EBADF and changes nothing', async () => {
    const { kernel, attach } = kernelWithDomains();
    const a = attach('a');
    const b = attach('b');
    const s = await udp(a, 7600);
    for (const h of [s, -1, 0, 1.5, '1024', null]) {
      expect((await b.call('sendto', h, bytes(1), 0, lo(9)))[0]).toBe(Errno.EBADF);
      expect((await b.call('close', h))[0]).toBe(Errno.EBADF);
    }
    await a.call('close', s);
    expect((await a.call('recvfrom', s, 1, MSG_DONTWAIT))[0]).toBe(Errno.EBADF);
    const reused = await udp(a);
    expect(reused).not.toBe(s);
    expect((await a.call('close', s))[0]).toBe(Errno.EBADF);
    expect(kernel.stats().domains.find((d) => d.name === 'a')!.accounting.handles).toBe(1);
  });

  it('grants narrowed rights to a named domain, and revokes them', async () => {
    const { attach } = kernelWithDomains();
    const owner = attach('owner');
    const guest = attach('guest');
    const s = await udp(owner, 7700);
    expect((await owner.call('grant', s, 'nobody', Rights.READ))[0]).toBe(Errno.ESRCH);
    expect((await owner.call('grant', s, 'owner', Rights.READ))[0]).toBe(Errno.EINVAL);
    const [errno, g] = await owner.call('grant', s, 'guest', Rights.READ);
    expect(errno).toBe(0);
    await owner.call('sendto', s, bytes(5), 0, lo(7700));
    expect([...(await guest.call('recvfrom', g, 10, 0))[1][0]]).toEqual([5]);
    expect((await guest.call('sendto', g, bytes(1), 0, lo(7700)))[0]).toBe(Errno.EACCES);
    expect((await guest.call('bind', g, lo(1)))[0]).toBe(Errno.EACCES);
    expect((await guest.call('grant', g, 'owner', Rights.READ))[0]).toBe(Errno.EACCES);
    expect(await owner.call('revoke', s, 'guest')).toEqual([0, 1]);
    expect((await guest.call('recvfrom', g, 10, MSG_DONTWAIT))[0]).toBe(Errno.EBADF);
  });

  it('refuses a grant that would widen rights', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const b = attach('b');
    attach('c');
    const s = await udp(a);
    const [, g] = await a.call('grant', s, 'b', Rights.READ | Rights.GRANT);
    expect((await b.call('grant', g, 'c', Rights.READ | Rights.WRITE))[0]).toBe(Errno.EACCES);
    expect((await b.call('grant', g, 'c', Rights.READ))[0]).toBe(0);
  });
});

describe('quotas and containment', () => {
  it('gives EMFILE and ENOBUFS to the domain that exhausted its share only', async () => {
    const { attach } = kernelWithDomains();
    const greedy = attach('greedy', { maxHandles: 2, maxBufferBytes: 8192 });
    const other = attach('other');
    await udp(greedy);
    const s = await udp(greedy, 7800);
    expect((await greedy.call('socket', AF_INET, SOCK_DGRAM, 0))[0]).toBe(Errno.EMFILE);
    // Three datagrams to itself sit in its FIFO, 2 KiB buffers each: 6 KiB of its 8 KiB share.
    for (let i = 0; i < 3; i++) await greedy.call('sendto', s, new Uint8Array(1000), 0, lo(7800));
    expect((await greedy.call('stats'))[1].bufferBytes).toBe(6144);
    expect((await greedy.call('sendto', s, new Uint8Array(4000), MSG_DONTWAIT, lo(7800)))[0]).toBe(Errno.ENOBUFS);
    // Larger than its whole share: refused at once, even blocking.
    expect((await greedy.call('sendto', s, new Uint8Array(20000), 0, lo(7800)))[0]).toBe(Errno.ENOBUFS);
    // The neighbour is untouched.
    await udp(other);
    const o = await udp(other);
    expect(await other.call('sendto', o, new Uint8Array(8000), 0, lo(9))).toEqual([0, 8000]);
  });

  it('wakes a blocked sender when its buffers come back', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a', { maxBufferBytes: 8192 });
    const s = await udp(a, 7850);
    for (let i = 0; i < 3; i++) await a.call('sendto', s, new Uint8Array(1000), 0, lo(7850));
    const blocked = a.call('sendto', s, new Uint8Array(4000), 0, lo(7850));
    await new Promise((r) => setImmediate(r));
    expect((await a.call('recvfrom', s, 10, 0))[0]).toBe(0);
    expect(await blocked).toEqual([0, 4000]);
  });

  it('releases everything a dead domain held, and its peers see a reset', async () => {
    const { kernel, attach } = kernelWithDomains();
    const owner = attach('owner');
    const guest = attach('guest');
    const s = await udp(owner, 7900);
    await owner.call('sendto', s, bytes(1, 2), 0, lo(7900));
    await owner.call('sendto', s, bytes(3), 0, lo(7900));
    await owner.call('recvfrom', s, 10, 0);
    const [, g] = await guest.call('socket', AF_INET, SOCK_DGRAM, 0).then(() => owner.call('grant', s, 'guest', Rights.READ));
    await guest.call('recvfrom', g, 10, 0);
    const blocked = guest.call('recvfrom', g, 10, 0);
    await new Promise((r) => setImmediate(r));
    const final = kernel.detach('owner', 'test');
    expect(final?.accounting).toEqual({ handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, streamBytes: 0, pendingCalls: 0 });
    expect((await blocked)[0]).toBe(Errno.ECONNRESET);
    expect((await guest.call('recvfrom', g, 10, 0))[0]).toBe(Errno.EBADF);
    const stats = kernel.stats();
    expect(stats.leaks).toEqual([]);
    expect(stats.pool.inUseBuffers).toBe(0);
    expect(stats.internalErrors).toBe(0);
  });

  it('refuses calls beyond the pending-call share with EAGAIN', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a', { maxPendingCalls: 2 });
    const s = await udp(a, 8000);
    const calls = [1, 2, 3].map(() => a.call('recvfrom', s, 10, 0));
    expect((await calls[2])[0]).toBe(Errno.EAGAIN);
  });
});

describe('malformed input', () => {
  it('answers every kind of garbage with an errno and keeps serving', async () => {
    const { kernel, attach } = kernelWithDomains();
    const a = attach('a');
    expect((await a.raw('text'))[1]).toBe(Errno.EINVAL);
    expect((await a.raw(bytes(0xc1)))[1]).toBe(Errno.EINVAL);
    expect((await a.raw(bytes(0x93, 0x05)))).toEqual([5, Errno.EINVAL]);
    expect((await a.raw(encodeRequest(6, 999, [])))).toEqual([6, Errno.ENOSYS]);
    expect((await a.raw(encodeRequest(7, SYS.socket, ['x', 2, 0])))).toEqual([7, Errno.EINVAL]);
    expect((await a.raw(encodeRequest(8, SYS.null, [1, 2])))).toEqual([8, Errno.EINVAL]);
    expect((await a.raw(new Uint8Array(2 << 20)))[1]).toBe(Errno.EMSGSIZE);
    expect(kernel.stats().lastMalformed).toMatch(/a:/);
    expect(await a.call('null')).toEqual([0, 0]);
    expect(kernel.stats().internalErrors).toBe(0);
  });

  it('decodes from its own copy: changing the bytes after submitting changes nothing', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const frame = encodeRequest(9, SYS.socket, [AF_INET, SOCK_DGRAM, 0]).slice();
    const reply = a.raw(frame);
    frame.fill(0xff); // after submit, before the kernel serves it
    expect((await reply)[1]).toBe(Errno.EINVAL);
    void Errno;
  });

  it('reports a domain that crosses the malformed-frame limit', async () => {
    const oopses: string[] = [];
    const { attach } = kernelWithDomains({ malformedLimit: 3, onOops: (d) => oopses.push(d) });
    const a = attach('a');
    for (let i = 0; i < 4; i++) await a.raw('junk');
    expect(oopses).toEqual(['a']);
  });
});

describe('confidentiality of replies', () => {
  it('posts every reply in memory of its own, so no domain is handed bytes of another’s traffic', async () => {
    const { attach } = kernelWithDomains();
    const a = attach('a');
    const b = attach('b');
    const marker = new Uint8Array(4000).fill(0x5a);
    const s = await udp(a, 8100);
    for (let i = 0; i < 20; i++) {
      await a.call('sendto', s, marker, 0, lo(8100));
      await a.call('recvfrom', s, 4000, 0);
      await b.call('null');
      await b.raw('garbage');
    }
    for (const d of [a, b]) {
      for (const frame of d.frames) {
        expect(frame.byteOffset).toBe(0);
        expect(frame.byteLength).toBe(frame.buffer.byteLength);
      }
    }
    expect(b.frames.some((f) => f.includes(0x5a))).toBe(false);
  });
});
