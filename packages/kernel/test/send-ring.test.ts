/**
 * The send ring seen from the kernel: each record is checked and carried out
 * as the sendto it stands for, a record the send buffer cannot take waits at
 * the ring's head, an error becomes the handle's pending error, and junk
 * breaks only the ring of the domain that wrote it.
 */
import { describe, expect, it } from 'vitest';
import { AF_INET, Errno, MSG_DONTWAIT, RING_OFFSET, RING_STOPPED, RING_TAIL, Rights, SO_RCVBUF, SO_SNDBUF, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, Xoshiro128 } from '@moat/abi';
import { kernelWithDomains, type TestDomain } from './harness.js';
import type { Kernel } from '../src/index.js';

const lo = (port: number) => ({ addr: '127.0.0.1', port });
const pattern = (n: number) => new Uint8Array(n).map((_, i) => (i * 2654435761) >>> 24);

/** A connection from `client` to `server`: the client's handle and the server's accepted one; `buf` sets both ends' buffers first. */
async function connection(server: TestDomain, client: TestDomain, port: number, buf?: number): Promise<{ c: number; conn: number }> {
  const [, l] = await server.call('socket', AF_INET, SOCK_STREAM, 0);
  if (buf) await server.call('setsockopt', l, SOL_SOCKET, SO_RCVBUF, buf);
  await server.call('bind', l, lo(port));
  await server.call('listen', l, 4);
  const [, c] = await client.call('socket', AF_INET, SOCK_STREAM, 0);
  if (buf) await client.call('setsockopt', c, SOL_SOCKET, SO_SNDBUF, buf);
  const accepting = server.call('accept', l);
  expect(await client.call('connect', c, lo(port))).toEqual([0, 0]);
  const [, [conn]] = await accepting;
  return { c, conn };
}

/** Writes `data` into the domain's ring on `handle` in records of `size`, ringing the doorbell after each; returns the records written. */
function writeRecords(d: TestDomain, handle: number, data: Uint8Array, size: number): number {
  let records = 0;
  for (let at = 0; at < data.length; at += size, records++) {
    if (!d.ring!.writer.tryWrite(handle, data.subarray(at, at + size))) throw new Error('the ring is full');
    d.ring!.doorbell();
  }
  return records;
}

async function readAll(d: TestDomain, h: number, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const [errno, r] = await d.call('recvfrom', h, 65536, 0);
    expect(errno).toBe(0);
    out.set(r[0], got);
    got += r[0].length;
  }
  return out;
}

const stats = (kernel: Kernel, name: string) => kernel.stats().domains.find((x) => x.name === name)!;
const stopped = (d: TestDomain) => Atomics.load(new Int32Array(d.ring!.signal, RING_OFFSET, 8), RING_STOPPED);

describe('send ring, in the kernel', () => {
  it('carries records out in order as sends, and counts them as such', async () => {
    const { kernel, attach } = kernelWithDomains();
    const server = attach('server');
    const client = attach('client', {}, {}, true);
    const { c, conn } = await connection(server, client, 8080);
    const data = pattern(300_000);
    const records = writeRecords(client, c, data, 40_000);
    expect(await readAll(server, conn, data.length)).toEqual(data);
    expect(stats(kernel, 'client').batched.ringSends).toBe(records);
    expect(stats(kernel, 'client').bytes.sent).toBe(data.length);
    expect(stats(kernel, 'client').calls.sendto).toEqual({ OK: records });
    expect(client.ring!.writer.consumed(client.ring!.writer.position)).toBe(true);
    expect(kernel.stats().internalErrors).toBe(0);
  });

  it('holds a record the send buffer cannot take at the head of the ring, and finishes it when the peer reads', async () => {
    const { kernel, attach } = kernelWithDomains();
    const server = attach('server');
    const client = attach('client', {}, {}, true);
    const { c, conn } = await connection(server, client, 8081, 8192);
    const data = pattern(200_000);
    const records = writeRecords(client, c, data, 20_000);
    expect((await client.call('null'))[0]).toBe(0); // a turn of the client's: its ring is drained as far as it goes
    expect(stats(kernel, 'client').batched.ringSends).toBeLessThan(records);
    expect(client.ring!.writer.consumed(client.ring!.writer.position)).toBe(false);
    expect(await readAll(server, conn, data.length)).toEqual(data);
    expect(stats(kernel, 'client').batched.ringSends).toBe(records);
    expect(client.ring!.writer.consumed(client.ring!.writer.position)).toBe(true);
  });

  it('refuses records it would refuse a send on, and reports each to the next send or recv on that handle only', async () => {
    const { kernel, attach } = kernelWithDomains();
    const owner = attach('owner');
    const client = attach('client', {}, {}, true);
    const [, u] = await client.call('socket', AF_INET, SOCK_DGRAM, 0);
    const [, s] = await owner.call('socket', AF_INET, SOCK_STREAM, 0);
    const [, g] = await owner.call('grant', s, 'client', Rights.READ);
    const bytes = new Uint8Array(100);
    writeRecords(client, u, bytes, 100); // a datagram socket: EOPNOTSUPP
    writeRecords(client, g, bytes, 100); // no WRITE right: EACCES
    writeRecords(client, 0x7fff_0000, bytes, 100); // no such handle: EBADF
    expect((await client.call('null'))[0]).toBe(0);
    expect(stopped(client)).toBe(1);
    expect(stats(kernel, 'client').calls.sendto).toEqual({ EOPNOTSUPP: 1, EACCES: 1, EBADF: 1 });
    // Only a send or recv reports it, once; other calls on the handle go on as before.
    expect((await client.call('getsockname', u))[0]).toBe(0);
    expect((await client.call('sendto', u, bytes, 0, lo(9)))[0]).toBe(Errno.EOPNOTSUPP);
    expect((await client.call('sendto', u, bytes, 0, lo(9)))[0]).toBe(0);
    expect((await client.call('recvfrom', g, 10, MSG_DONTWAIT))[0]).toBe(Errno.EACCES);
    expect((await client.call('recvfrom', g, 10, MSG_DONTWAIT))[0]).toBe(Errno.ENOTCONN);
    expect(kernel.stats().internalErrors).toBe(0);
  });

  it('takes junk in a ring without a throw: that ring breaks, one malformed frame is counted, and calls go on', async () => {
    let broken = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new Xoshiro128(seed);
      const { kernel, attach } = kernelWithDomains();
      const d = attach('vandal', {}, {}, true);
      const [, c] = await d.call('socket', AF_INET, SOCK_STREAM, 0);
      // Some good records, then words of junk over the records and the tail.
      if (seed % 2) writeRecords(d, c, pattern(1000), 100);
      const records = new Int32Array(d.ring!.signal, RING_OFFSET + 32, 64);
      for (let i = 0; i < records.length; i++) if (rng.nextFloat() < 0.5) records[i] = rng.nextUint32() | 0;
      Atomics.store(new Int32Array(d.ring!.signal, RING_OFFSET, 8), RING_TAIL, rng.nextFloat() < 0.5 ? rng.nextUint32() | 0 : (rng.nextUint32() % 64) * 8);
      d.ring!.doorbell();
      expect((await d.call('null'))[0], `seed ${seed}`).toBe(0);
      expect(await d.call('getsockname', c), `seed ${seed}`).toEqual([0, ['0.0.0.0', 0]]);
      const s = kernel.stats();
      expect(s.internalErrors, `seed ${seed}: ${s.lastInternalError}`).toBe(0);
      expect(stats(kernel, 'vandal').malformed, `seed ${seed}`).toBeLessThanOrEqual(1);
      if (stats(kernel, 'vandal').malformed === 1) {
        expect(stopped(d), `seed ${seed}`).toBe(2);
        broken++;
      }
    }
    // Most junk is found out (some tails point at records that happen to check out, or at none).
    expect(broken).toBeGreaterThan(25);
  });
});
