import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, encodeReply, Errno, SYS } from '@moat/abi';
import { asyncSockets, Channel, errnoOf, SEND_CHUNK_BYTES, syncSockets, SyscallError } from '../src/index.js';

/** A fake kernel on the other end of a MessageChannel that answers from a table. */
function fakeKernel(answer: (sysno: number, args: unknown[]) => [number, unknown?]) {
  const { port1, port2 } = new MessageChannel();
  const seen: unknown[][] = [];
  port1.on('message', (frame: Uint8Array) => {
    const [id, sysno, ...args] = decodeFrame(frame) as [number, number, ...unknown[]];
    seen.push([sysno, ...args]);
    const [errno, result] = answer(sysno, args);
    port1.postMessage(encodeReply(id, errno, result).slice());
  });
  const channel = new Channel(port2, new SharedArrayBuffer(4));
  return { channel, seen, close: () => (channel.close(), port1.close()) };
}

let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());

describe('the promise API over a channel', () => {
  it('encodes each call as its syscall and decodes the result', async () => {
    const k = fakeKernel((sysno) => {
      if (sysno === SYS.socket) return [0, 1024];
      if (sysno === SYS.recvfrom) return [0, [new Uint8Array([7]), '127.0.0.1', 53, 0]];
      if (sysno === SYS.getsockname) return [0, ['127.0.0.1', 9]];
      if (sysno === SYS.sendto) return [0, 1];
      return [Errno.EBADF];
    });
    cleanup = k.close;
    const api = asyncSockets(k.channel);
    expect(await api.socket(2, 2)).toBe(1024);
    expect(await api.recvfrom(1024, 10)).toEqual({ data: new Uint8Array([7]), from: { addr: '127.0.0.1', port: 53 }, flags: 0 });
    expect(await api.getsockname(1024)).toEqual({ addr: '127.0.0.1', port: 9 });
    await expect(api.close(5)).rejects.toMatchObject({ name: 'SyscallError', code: 'EBADF', syscall: 'close' });
    // send() is sendto() without an address; recv() is recvfrom() without one, as in libc.
    await api.send(1024, new Uint8Array([1]));
    expect(k.seen.at(-1)).toEqual([SYS.sendto, 1024, new Uint8Array([1]), 0, null]);
    expect(k.seen[0]).toEqual([SYS.socket, 2, 2, 0]);
  });

  it('matches replies to calls by id when many are in flight', async () => {
    const k = fakeKernel((_sysno, args) => [0, args[0]]);
    cleanup = k.close;
    const api = asyncSockets(k.channel);
    const results = await Promise.all([1, 2, 3, 4, 5].map((h) => api.fcntl(h, 3)));
    expect(results).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('large sends', () => {
  it('go out in chunks; an error after some chunks is a short write, one on the first is thrown', async () => {
    let calls = 0;
    let failAt = 3;
    const k = fakeKernel((sysno, args) => {
      if (sysno !== SYS.sendto) return [Errno.EINVAL];
      calls++;
      return calls === failAt ? [Errno.ECONNRESET] : [0, (args[1] as Uint8Array).length];
    });
    cleanup = k.close;
    const api = asyncSockets(k.channel);
    const big = new Uint8Array(SEND_CHUNK_BYTES * 3 + 10);
    expect(await api.send(1024, big)).toBe(SEND_CHUNK_BYTES * 2);
    calls = 0;
    failAt = 1;
    await expect(api.send(1024, big)).rejects.toMatchObject({ code: 'ECONNRESET' });
    calls = 0;
    failAt = 0;
    expect(await api.send(1024, big)).toBe(big.length);
    expect(calls).toBe(4);
  });
});

describe('helpers', () => {
  it('errnoOf returns 0, the errno, or rethrows what is not a syscall error', () => {
    expect(errnoOf(() => 1)).toBe(0);
    expect(
      errnoOf(() => {
        throw new SyscallError('close', Errno.EBADF);
      }),
    ).toBe(Errno.EBADF);
    expect(() =>
      errnoOf(() => {
        throw new TypeError('bug');
      }),
    ).toThrow(TypeError);
  });

  it('offers the same calls blocking and as promises', () => {
    const channel = {} as Channel;
    expect(Object.keys(syncSockets(channel)).sort()).toEqual(Object.keys(asyncSockets(channel)).sort());
  });
});
