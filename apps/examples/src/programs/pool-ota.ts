/**
 * The OTA of buffer-exhaustion: downloads the image from the UDP update
 * server (update-server, the protocol of protocol.ts), where every chunk that
 * arrives waits in a kernel packet buffer charged to the OTA. It first asks
 * for the image's metadata (so the server's address is resolved while the
 * pool still has room), says 'ready', and then waits until its neighbour has
 * exhausted the pool before it downloads.
 *
 * It sees the pool's state by probing: it queues datagrams to a socket of its
 * own until the kernel refuses, and counts what it could hold. With a
 * reservation R it can always hold about R; with the pool exhausted by
 * someone else, no more than that. The probe runs before and after the
 * download. Every send is non-blocking (a refused one is counted and tried
 * again shortly), and it gives up after `giveUpMs` without progress.
 */
import { createHash } from 'node:crypto';
import { AF_INET, defineProgram, errnoOf, Errno, MSG_DONTWAIT, SO_RCVBUF, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET, type SockAddr } from '@moat/libc';
import { sleep } from './library-kit.js';
import { decodeMeta, encode, MSG_BYE, MSG_CHUNK, MSG_GET, MSG_HELLO, word, type Meta } from './protocol.js';

export interface PoolOtaArgs {
  server: SockAddr;
  /** Chunks asked for at once: their buffers must fit its reservation. */
  window: number;
  recvTimeoutMs: number;
  /** Its reservedBufferBytes (what a probe of an exhausted pool should find). */
  reservedBytes: number;
  /** How much more than its reservation a probe may find and still call the pool exhausted. */
  slackBytes: number;
  waitMs: number;
  giveUpMs: number;
  /**
   * A domain it must outlive: it keeps its reservation until that domain has
   * ended (a revoke naming it answers ESRCH once it is gone), so that domain
   * never gets the memory its exit would free.
   */
  outlive?: string;
}

export interface PoolOtaResult {
  completed: boolean;
  intact: boolean;
  bytes: number;
  chunks: number;
  chunksReceived: number;
  /** Download sends refused with ENOBUFS. */
  enobufs: number;
  timeouts: number;
  /** Bytes it could hold in the probe: before the neighbour (a first look), when it started, when it ended. */
  probes: { first: number; start: number; end: number };
  exhaustedAtStart: boolean;
  exhaustedAtEnd: boolean;
  waitedMs: number;
  ms: number;
}

const PROBE_PAYLOAD = 2000; // a 2 KiB buffer each, queued; its frame in flight is 2 KiB too

export default defineProgram<PoolOtaArgs, PoolOtaResult>(({ sys, args, log }) => {
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.connect(s, args.server);
  sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, args.recvTimeoutMs);
  const probeSink = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(probeSink, { addr: '127.0.0.1', port: 0 });
  sys.setsockopt(probeSink, SOL_SOCKET, SO_RCVBUF, 1 << 20);
  const probeAt = sys.getsockname(probeSink);
  const cap = args.reservedBytes + args.slackBytes + 64 * 1024;

  /** Queues datagrams to itself until refused (or `cap`), then reads them back: the bytes it could hold. */
  const probe = (): number => {
    const data = new Uint8Array(PROBE_PAYLOAD);
    for (let held = 0; held < cap; held += 2048) {
      if (errnoOf(() => sys.sendto(probeSink, data, probeAt, MSG_DONTWAIT)) !== 0) break;
    }
    sys.null(); // lets the kernel deliver what is in flight
    let queued = 0;
    while (errnoOf(() => sys.recv(probeSink, PROBE_PAYLOAD, MSG_DONTWAIT)) === 0) queued++;
    return queued * 2048;
  };
  const exhausted = (held: number) => held <= args.reservedBytes + args.slackBytes;
  const send = (msg: Uint8Array): number => errnoOf(() => sys.send(s, msg, MSG_DONTWAIT));
  const receive = (): Uint8Array | undefined => {
    try {
      return sys.recv(s, 65536);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') throw err;
      return undefined;
    }
  };

  let meta: Meta | undefined;
  for (let i = 0; !meta && i < 50; i++) {
    send(encode(MSG_HELLO));
    const reply = receive();
    meta = reply && decodeMeta(reply);
  }
  if (!meta) throw new Error('no answer from the update server');
  const first = probe();
  log(`ready: image of ${meta.size} bytes in ${meta.chunks} chunks; probe holds ${first} B`);

  const waitStart = performance.now();
  let start = first;
  while (!exhausted(start) && performance.now() - waitStart < args.waitMs) {
    sleep(sys, 10);
    start = probe();
  }
  const waitedMs = Math.round(performance.now() - waitStart);
  log(`pool ${exhausted(start) ? 'exhausted' : 'NOT exhausted'} after ${waitedMs} ms (probe holds ${start} B); downloading`);

  const started = performance.now();
  const image = new Uint8Array(meta.size);
  const have = new Uint8Array(meta.chunks);
  let received = 0;
  let enobufs = 0;
  let timeouts = 0;
  let lastProgress = performance.now();
  let next = 0;
  while (received < meta.chunks && performance.now() - lastProgress < args.giveUpMs) {
    while (have[next]) next++;
    const asked = new Set<number>();
    for (let i = next; i < meta.chunks && asked.size < args.window; i++) if (!have[i]) asked.add(i);
    const lo = Math.min(...asked);
    const hi = Math.max(...asked);
    if (send(encode(MSG_GET, lo, hi - lo + 1)) === Errno.ENOBUFS) {
      enobufs++;
      sleep(sys, 2);
      continue;
    }
    while (asked.size > 0) {
      const msg = receive();
      if (!msg) {
        timeouts++;
        break;
      }
      if (msg[0] !== MSG_CHUNK || msg.length < 5) continue;
      const index = word(msg, 0);
      if (index >= meta.chunks || have[index]) continue;
      image.set(msg.subarray(5), index * meta.chunkSize);
      have[index] = 1;
      asked.delete(index);
      received++;
      lastProgress = performance.now();
    }
  }
  const ms = Math.round(performance.now() - started);
  const end = probe();
  send(encode(MSG_BYE));
  if (args.outlive) {
    const until = performance.now() + 10_000;
    while (performance.now() < until && errnoOf(() => sys.revoke(probeSink, args.outlive!)) !== Errno.ESRCH) sleep(sys, 20);
  }
  sys.close(s);
  sys.close(probeSink);
  const completed = received === meta.chunks;
  const intact = completed && Buffer.compare(createHash('sha256').update(image).digest(), meta.sha256) === 0;
  log(`${completed ? 'completed' : 'gave up'}: ${received}/${meta.chunks} chunks in ${ms} ms, ${enobufs} sends refused, probe holds ${end} B`);
  return {
    completed,
    intact,
    bytes: meta.size,
    chunks: meta.chunks,
    chunksReceived: received,
    enobufs,
    timeouts,
    probes: { first, start, end },
    exhaustedAtStart: exhausted(start),
    exhaustedAtEnd: exhausted(end),
    waitedMs,
    ms,
  };
});
