import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import {
  argsProblem,
  argsValid,
  COMMON_ERRORS,
  decodeFrame,
  encodeReply,
  encodeRequest,
  Errno,
  errnoName,
  MAX_FRAME_BYTES,
  peekCallId,
  strerror,
  SYS,
  SYSCALL_BY_NUMBER,
  SYSCALLS,
  SyscallError,
  UNKNOWN_CALL_ID,
} from '../src/index.js';

describe('errno', () => {
  it('uses Linux numbers under POSIX names', () => {
    expect(Errno.EBADF).toBe(9);
    expect(Errno.EAGAIN).toBe(11);
    expect(Errno.ENOTSOCK).toBe(88);
    expect(Errno.EMSGSIZE).toBe(90);
    expect(Errno.EADDRINUSE).toBe(98);
    expect(Errno.ENOBUFS).toBe(105);
    expect(Errno.ECONNREFUSED).toBe(111);
    expect(errnoName(9)).toBe('EBADF');
    expect(errnoName(4242)).toBe('E4242');
    expect(strerror(Errno.EMFILE)).toBe('Too many open files');
  });

  it('gives every syscall a list of errors drawn from the table', () => {
    for (const [name, spec] of Object.entries(SYSCALLS)) {
      for (const e of [...spec.errors, ...COMMON_ERRORS]) expect(Errno[e], `${name}: ${e}`).toBeTypeOf('number');
    }
  });

  it('carries the errno in thrown errors', () => {
    const err = new SyscallError('recv', Errno.EAGAIN);
    expect(err).toMatchObject({ errno: 11, code: 'EAGAIN', syscall: 'recv' });
    expect(err.message).toBe('recv: EAGAIN (Resource temporarily unavailable)');
  });
});

describe('syscall table', () => {
  it('numbers each call once', () => {
    const numbers = Object.values(SYSCALLS).map((s) => s.no);
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const [name, no] of Object.entries(SYS)) expect(SYSCALL_BY_NUMBER[no]).toBe(name);
  });

  it('validates arguments and names the failing field', () => {
    const addr = { addr: '127.0.0.1', port: 80 };
    expect(argsValid(SYS.bind, [1024, addr])).toBe(true);
    expect(argsValid(SYS.bind, [1024, { ...addr, port: 65536 }])).toBe(false);
    expect(argsValid(SYS.bind, [1024, { ...addr, addr: '256.0.0.1' }])).toBe(false);
    expect(argsValid(SYS.bind, [1024, { ...addr, extra: 1 }])).toBe(false);
    expect(argsValid(SYS.bind, [1024])).toBe(false);
    expect(argsValid(SYS.sendto, [1024, new Uint8Array(3), 0, null])).toBe(true);
    expect(argsValid(SYS.sendto, [1024, 'abc', 0, null])).toBe(false);
    expect(argsValid(SYS.socket, [2, 2.5, 0])).toBe(false);
    expect(argsValid(9999, [])).toBe(false);
    expect(argsProblem(SYS.bind, [1024, { ...addr, port: -1 }])).toMatch(/^bind: argument \/1\/port /);
    expect(argsProblem(SYS.null, [])).toBeUndefined();
  });

  it('leaves handles of any shape to the handle table (EBADF, never EINVAL)', () => {
    for (const h of [-1, 1.5, 'x', null, {}, NaN]) expect(argsValid(SYS.close, [h])).toBe(true);
  });
});

describe('codec', () => {
  it('round-trips requests and replies', () => {
    const data = new Uint8Array([1, 2, 3]);
    const decoded = decodeFrame(encodeRequest(42, SYS.sendto, [1024, data, 0, null])) as unknown[];
    expect(decoded.slice(0, 3)).toEqual([42, SYS.sendto, 1024]);
    expect([...(decoded[3] as Uint8Array)]).toEqual([1, 2, 3]);
    expect(decodeFrame(encodeReply(42, 0, [7, 'x']))).toEqual([42, 0, [7, 'x']]);
    expect(decodeFrame(encodeReply(42, Errno.EBADF))).toEqual([42, 9]);
  });

  it('refuses bytes after the value, at once even when the value is huge', () => {
    expect(() => decodeFrame(new Uint8Array([0xc0, 0xc0]))).toThrow(/1 bytes after it/);
    expect(() => decodeFrame(new Uint8Array([0x92, 0x01]))).toThrow();
    // A 1 MiB sendto with one byte of its length deleted: what follows reads as a vast
    // nested value and then trailing bytes. msgpackr's unpack spent 0.4-0.8 s on the
    // JSON of that value for its error message, in the kernel's only thread.
    const data = new Uint8Array(MAX_FRAME_BYTES - 64).map((_, i) => i & 0xff);
    const valid = encodeRequest(7, SYS.sendto, [1024, data, 0, null]);
    const cut = new Uint8Array(valid.length - 1);
    cut.set(valid.subarray(0, 9));
    cut.set(valid.subarray(10), 9);
    const t = performance.now();
    expect(() => decodeFrame(cut)).toThrow(/bytes after it/);
    expect(performance.now() - t).toBeLessThan(100);
  });

  it.each([1, 127, 128, 255, 256, 65535, 65536, 0xffffffff])('peeks call id %d without decoding', (id) => {
    expect(peekCallId(encodeRequest(id, 0, []))).toBe(id);
  });

  it('peeks UNKNOWN_CALL_ID from frames that do not start like a request', () => {
    for (const bytes of [[], [0x90], [0x91], [0xc0], [0x92, 0xd0, 0x01], [0x92, 0xcd, 0x01]]) {
      expect(peekCallId(new Uint8Array(bytes))).toBe(UNKNOWN_CALL_ID);
    }
  });
});

describe('codec: exact encoding of data-path frames', () => {
  // The reference: msgpackr with the codec's own options.
  const reference = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });
  const values: unknown[] = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1,
    0.5, -0, NaN, Infinity, null, true, false, '', '127.0.0.1', 'x'.repeat(31), 'x'.repeat(32), 'y'.repeat(255), 'z'.repeat(256), 'héllo',
    new Uint8Array(0), new Uint8Array(300).fill(7), new Uint8Array(70_000).fill(3), [1, [2, [3]]], Array.from({ length: 20 }, (_, i) => i),
    [new Uint8Array([1, 2, 3]), '10.0.0.2', 5000, 0], { fault: 'segv' },
  ];

  it('writes exactly the bytes msgpackr writes, into a buffer of exactly their size', () => {
    for (const v of values) {
      const frame = encodeReply(9, 0, v);
      expect(frame.byteLength).toBe(frame.buffer.byteLength);
      expect([...frame]).toEqual([...reference.pack([9, 0, v])]);
    }
    const request = encodeRequest(7, 12, [3, new Uint8Array(65536).fill(1), 0, null]);
    expect([...request]).toEqual([...reference.pack([7, 12, 3, new Uint8Array(65536).fill(1), 0, null])]);
  });
});
