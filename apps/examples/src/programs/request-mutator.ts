/**
 * The request mutator: sends requests whose frame lives in a
 * SharedArrayBuffer, and starts a worker thread of its own that keeps
 * changing one byte of the frame while the kernel reads it. Each request
 * comes in two versions that differ in that byte only (a syscall number, a
 * handle, a live handle against a forged one, an address valid against
 * invalid, a payload byte, a length prefix, a call id, a call with results
 * against one without), so whatever instant the kernel copies the frame, the
 * copy is one version or the other. Every reply must then be the answer to
 * one of the two, never something else: a kernel that checked one reading of
 * the frame and acted on another would answer a mix, or fail inside (EFAULT).
 *
 * Each version's answer is first learnt from a plain, unshared frame. The
 * race for a pair runs until both answers have been seen (so the mutation
 * really raced the kernel), within bounds. Datagrams that mutated sends put
 * on the wire are received and checked to be one version, whole.
 */
import { Worker } from 'node:worker_threads';
import { decodeFrame, encodeRequest, SYS } from '@moat/abi/core';
import { AF_INET, defineProgram, errnoOf, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET } from '@moat/libc';

export interface RequestMutatorArgs {
  /** Requests per pair at least, and at most. */
  minPerPair: number;
  maxPerPair: number;
  /** Times each answer must have been seen before a pair is over. */
  minEach: number;
}

export interface PairResult {
  name: string;
  /** Replies that answered the original request, the mutated one, and neither (with the first few). */
  original: number;
  mutated: number;
  neither: number;
  odd: string[];
}

export interface RequestMutatorResult {
  pairs: PairResult[];
  /** Datagrams the sends put on the wire (learning and racing): received whole as one version, or torn. */
  datagrams: { sent: number; received: number; whole: number; torn: number };
  toggles: number;
}

/**
 * The mutator thread: flips the byte at ctl[1] between ctl[2] and ctl[3]
 * until ctl[0] says stop; ctl[5] says which byte it is flipping (-1: none),
 * so the domain knows when it has let go of one frame before it writes the next.
 */
const MUTATOR = `
const { workerData } = require('node:worker_threads');
const bytes = new Uint8Array(workerData.frames);
const ctl = new Int32Array(workerData.ctl);
let toggles = 0;
while (Atomics.load(ctl, 0) === 0) {
  const at = Atomics.load(ctl, 1);
  Atomics.store(ctl, 5, at);
  Atomics.notify(ctl, 5);
  if (at < 0) { Atomics.wait(ctl, 1, at, 5); continue; }
  const a = Atomics.load(ctl, 2), b = Atomics.load(ctl, 3);
  for (let i = 0; i < 1024; i++) { Atomics.store(bytes, at, a); Atomics.store(bytes, at, b); }
  toggles += 2048;
  Atomics.store(ctl, 4, toggles | 0);
}
`;

/** Where two frames differ: exactly one byte, or the pair is no test. */
function differingByte(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error('the two versions differ in length');
  const at = [...a.keys()].filter((i) => a[i] !== b[i]);
  if (at.length !== 1) throw new Error(`the two versions differ in ${at.length} bytes`);
  return at[0]!;
}

/** A reply as text, for comparing answers: errno and result (bytes as hex). */
function answerOf(reply: Uint8Array, withId: boolean): string {
  const [id, errno, result] = decodeFrame(reply) as [number, number, unknown];
  const text = JSON.stringify(result ?? null, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
  return `${withId ? `#${id} ` : ''}${errno}:${text}`;
}

export default defineProgram<RequestMutatorArgs, RequestMutatorResult>(async ({ sys, channel, args, log }) => {
  // Sockets in known slots: a fresh table gives 1024, 1025, ... (generation 1, slots 0, 1, ...).
  const sA = sys.socket(AF_INET, SOCK_DGRAM); // 1024
  const sB = sys.socket(AF_INET, SOCK_DGRAM); // 1025: one byte from sA
  const sink = sys.socket(AF_INET, SOCK_DGRAM);
  const sender = sys.socket(AF_INET, SOCK_DGRAM);
  const connected = sys.socket(AF_INET, SOCK_DGRAM);
  for (const s of [sA, sB, sink]) sys.bind(s, { addr: '127.0.0.1', port: 0 });
  const sinkAt = sys.getsockname(sink);
  sys.connect(connected, sinkAt);
  const forged = connected + 8; // same generation, a slot nobody holds: one byte from `connected`
  if ((sB ^ sA) >> 8 !== 0 || (forged ^ connected) >> 8 !== 0) throw new Error(`unexpected handle numbers ${sA}, ${sB}, ${connected}`);

  const payload = (x: number) => new Uint8Array(64).fill(0x30).fill(x, 20, 21);
  const ID = 77_000;
  const pairs: { name: string; a: Uint8Array; b: Uint8Array; withId?: boolean; shapeOnly?: boolean; sends?: boolean }[] = [
    { name: 'syscall number (getsockname / getpeername)', a: encodeRequest(ID, SYS.getsockname, [connected]), b: encodeRequest(ID, SYS.getpeername, [connected]) },
    { name: 'handle (one socket / another)', a: encodeRequest(ID, SYS.getsockname, [sA]), b: encodeRequest(ID, SYS.getsockname, [sB]) },
    { name: 'handle (live / forged)', a: encodeRequest(ID, SYS.getsockname, [connected]), b: encodeRequest(ID, SYS.getsockname, [forged]) },
    {
      name: 'address (valid / invalid)',
      a: encodeRequest(ID, SYS.sendto, [sender, payload(0x41), 0, sinkAt]),
      b: encodeRequest(ID, SYS.sendto, [sender, payload(0x41), 0, { addr: sinkAt.addr.replace(/1$/, '!'), port: sinkAt.port }]),
      sends: true,
    },
    { name: 'payload byte', a: encodeRequest(ID, SYS.sendto, [sender, payload(0x41), 0, sinkAt]), b: encodeRequest(ID, SYS.sendto, [sender, payload(0x42), 0, sinkAt]), sends: true },
    {
      name: 'length prefix (64 / 65 bytes of data)',
      a: encodeRequest(ID, SYS.sendto, [sender, payload(0x41), 0, sinkAt]),
      b: (() => {
        const f = encodeRequest(ID, SYS.sendto, [sender, payload(0x41), 0, sinkAt]);
        const at = f.findIndex((x, i) => x === 0xc4 && f[i + 1] === 64); // bin 8 of 64 bytes: its length byte follows
        f[at + 1] = 65;
        return f;
      })(),
      sends: true,
    },
    { name: 'call id', a: encodeRequest(ID, SYS.null, []), b: encodeRequest(ID + 1, SYS.null, []), withId: true },
    { name: 'a call with results / without (stats / null)', a: encodeRequest(ID, SYS.stats, []), b: encodeRequest(ID, SYS.null, []), shapeOnly: true },
  ];

  const datagrams = { sent: 0, received: 0, whole: 0, torn: 0 };
  sys.setsockopt(sink, SOL_SOCKET, SO_RCVTIMEO, 2000);
  /** The datagram a successful send put on the wire, received at once: which version's payload it is, whole, or 'torn'. */
  const delivered = () => {
    datagrams.sent++;
    let data: Uint8Array | undefined;
    if (errnoOf(() => (data = sys.recv(sink, 1024))) !== 0) return 'missing';
    datagrams.received++;
    const hex = Buffer.from(data!).toString('hex');
    const which = hex === versionA ? 'payload A' : hex === versionB ? 'payload B' : 'torn';
    if (which === 'torn') datagrams.torn++;
    else datagrams.whole++;
    return which;
  };
  const versionA = Buffer.from(payload(0x41)).toString('hex');
  const versionB = Buffer.from(payload(0x42)).toString('hex');
  /** A reply as the pair is judged by: its answer and, for sends, what reached the wire. */
  const classify = (p: (typeof pairs)[number], reply: Uint8Array) => {
    let answer: string;
    if (p.shapeOnly) {
      const [, errno, result] = decodeFrame(reply) as [number, number, unknown];
      answer = `${errno}:${typeof result === 'object' && result !== null && 'handles' in result ? 'accounting' : JSON.stringify(result)}`;
    } else answer = answerOf(reply, !!p.withId);
    return p.sends && answer.startsWith('0:') ? `${answer} ${delivered()}` : answer;
  };

  // Learn each version's answer from plain frames (the kernel's answer when nothing races it).
  const known = pairs.map((p) => {
    const answers = [p.a, p.b].map((f) => classify(p, channel.rawSyncBytes(f.slice())));
    if (answers[0] === answers[1]) throw new Error(`${p.name}: both versions get the same answer (${answers[0]})`);
    return answers as [string, string];
  });
  datagrams.sent = datagrams.received = datagrams.whole = datagrams.torn = 0;

  const frames = new SharedArrayBuffer(4096);
  const ctl = new Int32Array(new SharedArrayBuffer(32));
  ctl[1] = -1;
  ctl[5] = -1;
  const mutator = new Worker(MUTATOR, { eval: true, workerData: { frames, ctl: ctl.buffer } });
  const results: PairResult[] = [];
  try {
    for (const [i, p] of pairs.entries()) {
      const at = differingByte(p.a, p.b);
      const view = new Uint8Array(frames, 0, p.a.length);
      view.set(p.a);
      Atomics.store(ctl, 2, p.a[at]!);
      Atomics.store(ctl, 3, p.b[at]!);
      Atomics.store(ctl, 1, at);
      Atomics.notify(ctl, 1);
      const r: PairResult = { name: p.name, original: 0, mutated: 0, neither: 0, odd: [] };
      for (let n = 0; n < args.maxPerPair && (n < args.minPerPair || r.original < args.minEach || r.mutated < args.minEach); n++) {
        // The kernel gets a view of the shared frame; the byte may change under it at any instant.
        const answer = classify(p, channel.rawSyncBytes(view));
        if (answer === known[i]![0]) r.original++;
        else if (answer === known[i]![1]) r.mutated++;
        else {
          r.neither++;
          if (r.odd.length < 3) r.odd.push(answer.slice(0, 120));
        }
      }
      Atomics.store(ctl, 1, -1);
      // Not a byte more of this frame: the next is written only once the thread has let go.
      while (Atomics.load(ctl, 5) !== -1) Atomics.wait(ctl, 5, Atomics.load(ctl, 5), 5);
      results.push(r);
      log(`${p.name}: original ${r.original}, mutated ${r.mutated}, neither ${r.neither}`);
    }
  } finally {
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 1);
    await mutator.terminate();
  }
  for (const s of [sA, sB, sink, sender, connected]) sys.close(s);
  return { pairs: results, datagrams, toggles: Atomics.load(ctl, 4) };
});
