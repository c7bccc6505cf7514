import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import {
  argsProblem,
  argsValid,
  COMMON_ERRORS,
  decodeFrame,
  encodeReply,
  encodeReplyInto,
  encodeRequest,
  Errno,
  errnoName,
  MAX_FRAME_BYTES,
  peekCallId,
  postReply,
  postRequest,
  replyBytesAt,
  strerror,
  SYS,
  SYSCALL_BY_NUMBER,
  SYSCALLS,
  SyscallError,
  UNKNOWN_CALL_ID,
  Xoshiro128,
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

  it('writes the frames of numbers only (made without their array) as msgpackr does', () => {
    for (const callId of [1, 127, 128, 200, 70_000, 2 ** 32 - 1]) {
      for (const n of [0, 9, 127, 128, 1000, -1, -200, 0.5]) {
        expect([...encodeReply(callId, n)]).toEqual([...reference.pack([callId, n])]);
        expect([...encodeReply(callId, 0, n)]).toEqual([...reference.pack([callId, 0, n])]);
        expect([...encodeRequest(callId, 20, [n])]).toEqual([...reference.pack([callId, 20, n])]);
      }
      expect([...encodeRequest(callId, 0, [])]).toEqual([...reference.pack([callId, 0])]);
    }
  });

  it('posts the frames encodeRequest and encodeReply make, each arriving as a frame of its own', () => {
    const { port1, port2 } = new MessageChannel();
    try {
      // Numbers only (written into a buffer the next post of the same length reuses), and others (made, then posted).
      const requests: [number, number, unknown[]][] = [[1, 0, []], [2, 0, []], [3, 20, [7]], [4, 20, [0.5]], [5, 12, [3, new Uint8Array([1, 2]), 0, null]]];
      const replies: [number, number, unknown][] = [[1, 0, undefined], [2, 0, 5], [3, 0, -200], [4, 9, undefined], [5, 0, [new Uint8Array([9]), '10.0.0.2', 80]]];
      for (const [id, sysno, args] of requests) postRequest(port1, id, sysno, args);
      for (const [id, errno, result] of replies) postReply(port1, id, errno, result);
      const arrived = () => receiveMessageOnPort(port2)!.message as Uint8Array;
      for (const [id, sysno, args] of requests) expect([...arrived()]).toEqual([...encodeRequest(id, sysno, args)]);
      for (const [id, errno, result] of replies) expect([...arrived()]).toEqual([...encodeReply(id, errno, result)]);
      expect(receiveMessageOnPort(port2)).toBeUndefined();
    } finally {
      port1.close();
    }
  });
});

describe('codec: replies written into a slot', () => {
  it('writes the bytes encodeReply makes, from the start of the slot', () => {
    const slot = new Uint8Array(70_000 + 64);
    for (const callId of [1, 200, 70_000, 2 ** 32 - 1]) {
      for (const length of [0, 1, 255, 256, 65_535, 65_536, 70_000]) {
        const data = new Uint8Array(length).map((_, i) => i * 7);
        const result = [data, '127.0.0.1', 5000, 0];
        slot.fill(0xee);
        const at = encodeReplyInto(slot, callId, 0, result)!;
        expect(at.start).toBe(0);
        expect(Buffer.from(slot.subarray(0, at.end)).equals(encodeReply(callId, 0, result))).toBe(true);
        const decoded = decodeFrame(slot.slice(0, at.end)) as [number, number, [Uint8Array]];
        expect(decoded[0]).toBe(callId);
        expect(Buffer.from(decoded[2][0]).equals(data)).toBe(true);
      }
    }
  });

  it("says where a recv reply's data goes (replyBytesAt), and leaves data already read there, or further on, in place", () => {
    const slot = new Uint8Array(70_000 + 64);
    for (const callId of [1, 127, 128, 200, 70_000, 2 ** 32 - 1]) {
      for (const length of [0, 1, 255, 256, 65_535, 65_536, 70_000]) {
        for (const result of [(d: Uint8Array) => [d, '127.0.0.1', 5000, 0], (d: Uint8Array) => [d, 0x7f000001, 5000, 0, 3]]) {
          const data = new Uint8Array(length).map((_, i) => i * 11 + 1);
          // Where encodeReplyInto puts data it copies in.
          const at = replyBytesAt(callId, length);
          slot.fill(0);
          encodeReplyInto(slot, callId, 0, result(data));
          expect(Buffer.from(slot.subarray(at, at + length)).equals(data)).toBe(true);
          // Read there first (or a few bytes on) and passed as a view of the slot, it is left in place and the frame is the same.
          for (const shift of [0, 3]) {
            slot.fill(0);
            slot.set(data, at + shift);
            const placed = encodeReplyInto(slot, callId, 0, result(slot.subarray(at + shift, at + shift + length)))!;
            expect(placed.start).toBe(shift);
            expect(Buffer.from(slot.subarray(placed.start, placed.end)).equals(encodeReply(callId, 0, result(data)))).toBe(true);
          }
        }
      }
    }
  });

  it('refuses what does not fit, and frames that are not data-path frames, for encodeReply to make', () => {
    expect(encodeReplyInto(new Uint8Array(100), 1, 0, [new Uint8Array(200)])).toBeUndefined();
    expect(encodeReplyInto(new Uint8Array(100), 1, 0, { fault: 'segv' })).toBeUndefined();
    expect(encodeReplyInto(new Uint8Array(100), 1, 9)).toEqual({ start: 0, end: 3 });
  });
});

describe('codec: decoding', () => {
  // The reference: msgpackr alone, with the codec's own options, reading the first value only (decodeFrame before its fast path).
  const reference = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });
  const referenceDecode = (frame: Uint8Array): unknown => {
    let value: unknown;
    let end = -1;
    reference.unpackMultiple(frame, (v, _start, stop) => {
      value = v;
      end = stop ?? -1;
      return false;
    });
    if (end !== frame.length) throw new Error('bytes after the value');
    return value;
  };
  const outcome = (decode: (f: Uint8Array) => unknown, frame: Uint8Array) => {
    try {
      return { value: decode(frame) };
    } catch {
      return { threw: true };
    }
  };

  /** Where each integer width begins and ends. */
  const BOUNDARIES = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1];

  /** A value of the kinds frames carry, and of some they do not (maps, long and non-ASCII strings, 64-bit integers). */
  function randomValue(rng: Xoshiro128, depth: number): unknown {
    const int = (bits: number) => Math.floor(rng.nextFloat() * 2 ** bits);
    switch (rng.nextUint32() % 15) {
      case 0: return int(7);
      case 1: return -int(5);
      case 2: return int(8) + 128;
      case 3: return int(16);
      case 4: return int(32);
      case 5: return -int(31);
      case 6: return [0.5, -0, NaN, -Infinity, 2 ** 40, -(2 ** 40)][rng.nextUint32() % 6];
      case 7: return [null, true, false][rng.nextUint32() % 3];
      case 8: return new Uint8Array(rng.nextUint32() % (rng.nextFloat() < 0.1 ? 300 : 40)).fill(rng.nextUint32() & 0xff);
      case 9: return 'abcdefghij.:'.repeat(rng.nextUint32() % 30).slice(0, rng.nextUint32() % 300);
      case 10: return 'é' + 'x'.repeat(rng.nextUint32() % 5);
      case 11: return { addr: '10.0.0.1', port: int(16) };
      case 12: return BOUNDARIES[rng.nextUint32() % BOUNDARIES.length];
      default: {
        if (depth > 5) return null;
        const n = rng.nextUint32() % (rng.nextFloat() < 0.05 ? 40 : 5);
        return Array.from({ length: n }, () => randomValue(rng, depth + 1));
      }
    }
  }

  it('decodes every frame as msgpackr does: the same value, or an error where it errs (seeded, with mutations)', { timeout: 30_000 }, () => {
    const rng = new Xoshiro128(20261126);
    for (let k = 0; k < 5_000; k++) {
      // Now and then a bin of over 64 KiB (bin32), otherwise small values: the comparison is byte by byte.
      const frame = new Uint8Array(reference.pack([k, 0, k % 500 === 0 ? new Uint8Array(70_000).fill(k & 0xff) : randomValue(rng, 0)]));
      // Mutated too: a byte changed, the frame cut short, or a byte added after it.
      const mutation = rng.nextUint32() % 4;
      if (mutation === 1) frame[rng.nextUint32() % frame.length] = rng.nextUint32() & 0xff;
      const bytes = mutation === 2 ? frame.subarray(0, rng.nextUint32() % frame.length).slice() : mutation === 3 ? new Uint8Array([...frame, 0xc0]) : frame;
      expect(outcome(decodeFrame, bytes)).toEqual(outcome(referenceDecode, bytes));
    }
  });

  it('hands binary data out as views of the frame, as msgpackr does', () => {
    const frame = encodeReply(3, 0, [new Uint8Array([1, 2, 3])]);
    const [, , [data]] = decodeFrame(frame) as [number, number, [Uint8Array]];
    expect(data.constructor).toBe(Uint8Array);
    expect(data.buffer).toBe(frame.buffer);
    expect([...data]).toEqual([1, 2, 3]);
    // A Buffer's are Buffers, as msgpackr makes them.
    const [, , [fromBuffer]] = decodeFrame(Buffer.from(frame)) as [number, number, [Uint8Array]];
    expect(Buffer.isBuffer(fromBuffer)).toBe(true);
    expect([...fromBuffer]).toEqual([1, 2, 3]);
  });
});
