import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  argsValid,
  decodeFrame,
  encodeRequest,
  Errno,
  FUZZ_KINDS,
  FuzzLedger,
  judgeFrame,
  MAX_FRAME_BYTES,
  POLLIN,
  POLLNVAL,
  SYS,
  SyscallFuzzer,
  SYSCALLS,
  UNKNOWN_CALL_ID,
  Xoshiro128,
  type FrameVerdict,
  type FuzzFrame,
  type FuzzKind,
} from '../src/index.js';

/** A digest of a frame's bytes, so long runs compare without keeping every frame. */
const hash = (bytes: Uint8Array): string => createHash('sha1').update(bytes).digest('hex');

function fingerprint(m: unknown): string {
  if (m instanceof ArrayBuffer) return `ArrayBuffer ${hash(new Uint8Array(m))}`;
  if (ArrayBuffer.isView(m)) return `${m.constructor.name} ${hash(new Uint8Array(m.buffer, m.byteOffset, m.byteLength))}`;
  if (m instanceof Map || m instanceof Set) return `${m.constructor.name} ${m.size}`;
  return `${typeof m} ${JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`;
}

function run(seed: number, n: number, setup?: (f: SyscallFuzzer) => void, options: Partial<ConstructorParameters<typeof SyscallFuzzer>[0]> = {}): FuzzFrame[] {
  const f = new SyscallFuzzer({ seed, domains: ['peer'], ...options });
  setup?.(f);
  return Array.from({ length: n }, () => f.next());
}

/** A ledger state like a running fuzzer's: handles held, closed and granted. */
function holding(f: SyscallFuzzer): void {
  for (const h of [1024, 1025, 2050, 4099]) f.ledger.adopt(h);
  f.ledger.forget(4099);
  f.ledger.foreign.push(1026);
  f.ledger.learnPort(40000);
}

/** One sample of every kind, shared by the tests that only read it. */
const SAMPLE = [1, 2, 3].flatMap((seed) => run(seed, 2000, holding));

const calls = (frames: FuzzFrame[]) => frames.filter((f): f is FuzzFrame & { expect: Extract<FrameVerdict, { class: 'call' }> } => f.expect.class === 'call');

describe('SyscallFuzzer: determinism', () => {
  it('gives the same frames for the same seed, and other frames for another seed', () => {
    const a = run(42, 1200, holding).map((f) => `${f.kind} ${fingerprint(f.message)}`);
    const b = run(42, 1200, holding).map((f) => `${f.kind} ${fingerprint(f.message)}`);
    const c = run(43, 1200, holding).map((f) => `${f.kind} ${fingerprint(f.message)}`);
    expect(b).toEqual(a);
    expect(c.filter((x, i) => x === a[i]).length).toBeLessThan(100);
  });

  it('draws the same kinds and syscalls whatever the ledger holds, so a seed replays after the kernel changes', () => {
    const shape = (frames: FuzzFrame[]) => frames.map((f) => `${f.kind} ${f.syscall ?? '-'}`);
    const busy = run(7, 1500, (f) => {
      holding(f);
      // Learn more as it goes, as a fuzzer does from the kernel's answers.
      const next = f.next.bind(f);
      f.next = () => {
        const frame = next();
        if (frame.index % 97 === 0) f.ledger.adopt(8192 + frame.index);
        if (frame.index % 211 === 0) f.ledger.forget(f.ledger.live[0]!);
        return frame;
      };
    });
    expect(shape(busy)).toEqual(shape(run(7, 1500)));
  });
});

describe('SyscallFuzzer: kinds', () => {
  const of = (kind: FuzzKind) => SAMPLE.filter((f) => f.kind === kind);

  it('makes every kind', () => {
    const seen = new Set(SAMPLE.map((f) => f.kind));
    expect([...FUZZ_KINDS].filter((k) => !seen.has(k))).toEqual([]);
  });

  it('makes only the kinds and syscalls asked for, by name or by group', () => {
    const some = run(5, 500, holding, { kinds: ['handle', 'schema.boundary'], syscalls: ['close', 'sendto', 'poll'] });
    expect(new Set(some.map((f) => f.kind))).toEqual(new Set(['handle.forged', 'handle.nearValid', 'handle.stale', 'handle.foreign', 'schema.boundary']));
    expect(new Set(some.map((f) => f.syscall))).toEqual(new Set(['close', 'sendto', 'poll']));
    expect(() => new SyscallFuzzer({ seed: 1, kinds: ['nope' as FuzzKind] })).toThrow(RangeError);
  });

  it('builds valid requests from the schemas, and boundary ones that miss by exactly one value', () => {
    for (const kind of ['schema.valid', 'schema.noncanonical', 'bytes.shared', 'handle.forged', 'handle.nearValid', 'handle.stale', 'handle.foreign'] as const) {
      for (const f of of(kind)) {
        expect(f.expect, `${kind} #${f.index}`).toMatchObject({ class: 'call', syscall: f.syscall });
        const [, sysno, ...args] = decodeFrame((f.message as Uint8Array).slice()) as [number, number, ...unknown[]];
        expect(argsValid(sysno, args)).toBe(true);
      }
    }
    for (const f of of('schema.boundary')) expect(f.expect, `#${f.index}`).toMatchObject({ class: 'invalid', syscall: f.syscall });
  });

  it('biases values toward edges', () => {
    const valid = calls(of('schema.valid'));
    const argsOf = (name: string) => valid.filter((f) => f.expect.syscall === name).map((f) => f.expect.args);
    const sendLengths = new Set(argsOf('sendto').map((a) => (a[1] as Uint8Array).length));
    for (const n of [0, 1, 1472, 1473, 65507, 65508]) expect(sendLengths, `sendto of ${n} bytes`).toContain(n);
    const addrs = [...argsOf('bind').map((a) => a[1]), ...argsOf('connect').map((a) => a[1]), ...argsOf('sendto').map((a) => a[3])];
    const ports = new Set(addrs.map((a) => (a as { port: number } | null)?.port));
    for (const p of [0, 1, 65535, 40000]) expect(ports, `port ${p}`).toContain(p);
    const maxlens = new Set(argsOf('recvfrom').map((a) => a[1]));
    for (const n of [0, 0x7fffffff]) expect(maxlens).toContain(n);
    const flags = new Set(argsOf('recvfrom').map((a) => a[2]));
    for (const n of [-1, -0x80000000, 0x7fffffff]) expect(flags).toContain(n);
    expect(argsOf('poll').some((a) => (a[0] as unknown[]).length === 256)).toBe(true);
    expect(argsOf('poll').some((a) => (a[0] as unknown[]).length === 0)).toBe(true);
    expect(argsOf('grant').some((a) => (a[1] as string).length === 64)).toBe(true);
    expect(argsOf('socket').filter((a) => a[0] === 2 && (a[1] === 1 || a[1] === 2)).length).toBeGreaterThan(10);
  });

  it('aims the handle kinds only at handles the domain does not hold', () => {
    const ledger = new FuzzLedger();
    holding({ ledger } as SyscallFuzzer);
    for (const kind of ['handle.forged', 'handle.nearValid', 'handle.stale', 'handle.foreign'] as const) {
      for (const f of calls(of(kind))) {
        const handles = f.expect.syscall === 'poll' ? (f.expect.args[0] as [unknown][]).map(([h]) => h) : [f.expect.args[0]];
        for (const h of handles) expect(ledger.owns(h), `${kind} #${f.index} used ${String(h)}`).toBe(false);
      }
    }
    // Stale ones are the handle it closed; near-valid ones are its own, moved.
    expect(calls(of('handle.stale')).some((f) => f.expect.args[0] === 4099)).toBe(true);
    expect(calls(of('handle.nearValid')).some((f) => f.expect.args[0] === 2048 + 1024 + 2)).toBe(true);
    expect(calls(of('handle.foreign')).some((f) => f.expect.args[0] === 1026)).toBe(true);
  });

  it('expects of each shape what the framing rules say', () => {
    for (const f of of('bytes.notBytes')) expect(f.expect).toMatchObject({ class: 'malformed', errno: Errno.EINVAL, replyId: UNKNOWN_CALL_ID });
    for (const f of [...of('shape.notArray'), ...of('shape.short'), ...of('bytes.truncated'), ...of('bytes.hugeLength'), ...of('mutate.truncate')]) {
      expect(f.expect.class, `${f.kind} #${f.index}`).toBe('malformed');
    }
    for (const f of of('shape.badCallId')) expect(f.expect).toMatchObject({ class: 'malformed', replyId: UNKNOWN_CALL_ID });
    for (const f of of('bytes.oversize')) {
      const size = (f.message as Uint8Array).byteLength;
      if (size > MAX_FRAME_BYTES) expect(f.expect).toMatchObject({ class: 'malformed', errno: Errno.EMSGSIZE });
      else expect(size).toBe(MAX_FRAME_BYTES);
    }
    // -0 is an integer, so a -0 syscall number is call 0 (null); anything else is ENOSYS.
    for (const f of of('shape.unknownSyscall')) expect(f.expect.class === 'nosys' || (f.expect.class === 'call' && f.expect.syscall === 'null')).toBe(true);
    for (const kind of ['shape.wrongTypes', 'shape.arity', 'shape.badNumbers'] as const) {
      expect(of(kind).filter((f) => f.expect.class === 'invalid').length / of(kind).length, kind).toBeGreaterThan(0.9);
    }
  });
});

describe('the real decoder on hostile frames', () => {
  it('never lets anything but an Error out, and judging a frame never throws', () => {
    let decoded = 0;
    let refused = 0;
    // Each frame was judged when it was made (next() would have thrown); here the decoder alone, again.
    for (const frame of [...SAMPLE, ...run(11, 1500, holding, { kinds: ['mutate', 'bytes', 'shape'] })]) {
      const m = frame.message;
      if (!(m instanceof Uint8Array) || m.byteLength > MAX_FRAME_BYTES) continue;
      try {
        decodeFrame(m.slice());
        decoded++;
      } catch (err) {
        expect(err, `${frame.kind} #${frame.index}`).toBeInstanceOf(Error);
        refused++;
      }
    }
    expect(decoded).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });

  it('judges shared memory from a copy, and -0, wide integers and floats as the integers they are', () => {
    const shared = new Uint8Array(new SharedArrayBuffer(64), 3, 4);
    shared.set([0x92, 0x05, 0x00, 0xc0].slice(0, 3));
    expect(judgeFrame(shared.subarray(0, 3))).toMatchObject({ class: 'call', syscall: 'null', replyId: 5 });
    // [7, -0 as float64] is call 0; [7, 1.0 as float32, 2, 2, 0] is socket(2, 2, 0).
    expect(judgeFrame(Uint8Array.from([0x92, 0x07, 0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0]))).toMatchObject({ class: 'call', syscall: 'null' });
    expect(judgeFrame(Uint8Array.from([0x95, 0x07, 0xca, 0x3f, 0x80, 0, 0, 0x02, 0x02, 0x00]))).toMatchObject({ class: 'call', syscall: 'socket', args: [2, 2, 0] });
  });
});

describe('FuzzLedger', () => {
  const call = (syscall: keyof typeof SYSCALLS, ...args: unknown[]) => judgeFrame(encodeRequest(9, SYS[syscall], args));

  it('learns handles from socket, accept and close', () => {
    const l = new FuzzLedger();
    expect(l.observe(call('socket', 2, 2, 0), [9, 0, 1024])).toEqual({ outcome: 'OK' });
    expect(l.observe(call('accept', 1024), [9, 0, [2048, '127.0.0.1', 40000]])).toEqual({ outcome: 'OK' });
    expect(l.live).toEqual([1024, 2048]);
    expect(l.ports).toEqual([40000]);
    expect(l.observe(call('close', 1024), [9, 0, 0])).toEqual({ outcome: 'OK' });
    expect(l.live).toEqual([2048]);
    expect(l.stale).toEqual([1024]);
    expect(l.observe(call('stats'), [9, 0, { handles: 1, sockets: 1, buffers: 0, bufferBytes: 0, pendingCalls: 0 }])).toEqual({ outcome: 'OK' });
    expect(l.observe(call('stats'), [9, 0, { handles: 2 }]).anomaly).toMatch(/stats counts 2 handles, the ledger 1/);
  });

  it('calls a success on a handle the domain does not hold a breach', () => {
    const l = new FuzzLedger();
    l.adopt(1024);
    expect(l.observe(call('sendto', 1025, new Uint8Array(1), 0, null), [9, 0, 1]).breach).toMatch(/sendto succeeded on handle 1025/);
    expect(l.observe(call('close', 1024.5), [9, 0, 0]).breach).toMatch(/close succeeded on handle 1024.5/);
    expect(l.observe(call('sendto', 1025, new Uint8Array(1), 0, null), [9, Errno.EBADF])).toEqual({ outcome: 'EBADF' });
    expect(l.observe(call('poll', [[1024, POLLIN], [7, POLLIN]], 0), [9, 0, [0, POLLNVAL]])).toEqual({ outcome: 'OK' });
    expect(l.observe(call('poll', [[1024, POLLIN], [7, POLLIN]], 0), [9, 0, [0, 0]]).breach).toMatch(/poll saw 0 on handle 7/);
  });

  it('reports answers that break the ABI in other ways', () => {
    const l = new FuzzLedger();
    l.adopt(1024);
    expect(l.observe(call('recvfrom', 1024, 10, 0), [9, Errno.EBADF]).anomaly).toMatch(/refused this domain's own handle 1024/);
    expect(l.observe(call('recvfrom', 1024, 10, 0), [9, Errno.EFAULT]).anomaly).toMatch(/EFAULT/);
    expect(l.observe(call('close', 1024), [9, Errno.EPIPE]).anomaly).toMatch(/EPIPE is not among its documented errors/);
    expect(l.observe(call('null'), [10, 0, 0]).anomaly).toMatch(/answered as call 10, expected 9/);
    expect(l.observe(judgeFrame('junk'), [0, Errno.EINVAL])).toEqual({ outcome: 'malformed EINVAL' });
    expect(l.observe(judgeFrame('junk'), [0, Errno.ENOSYS]).anomaly).toMatch(/malformed frame answered ENOSYS, expected EINVAL/);
    expect(l.observe(call('socket', 'x', 2, 0), [9, Errno.EINVAL])).toEqual({ outcome: 'invalid EINVAL' });
  });

  it('tells which polls could wait without end', () => {
    const l = new FuzzLedger();
    l.adopt(1024);
    expect(l.mayWaitLong(call('poll', [[1024, POLLIN]], -1), 50)).toBe(true);
    expect(l.mayWaitLong(call('poll', [], 1000), 50)).toBe(true);
    expect(l.mayWaitLong(call('poll', [[1024, POLLIN]], 50), 50)).toBe(false);
    expect(l.mayWaitLong(call('poll', [[1024, POLLIN], [5, POLLIN]], -1), 50)).toBe(false); // 5 answers POLLNVAL at once
    expect(l.mayWaitLong(call('recvfrom', 1024, 1, 0), 50)).toBe(false);
  });
});

describe('Xoshiro128 (xoshiro128**)', () => {
  it('matches the reference C implementation from state {1, 2, 3, 4}', () => {
    const rng = Xoshiro128.fromState(1, 2, 3, 4);
    // Output of https://prng.di.unimi.it/xoshiro128starstar.c compiled with gcc.
    expect(Array.from({ length: 10 }, () => rng.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804]);
  });
});
