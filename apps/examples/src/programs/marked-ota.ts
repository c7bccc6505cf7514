/**
 * The OTA of confidentiality: for a while it moves data of its own through
 * the kernel, every byte of it the OTA's marker repeated (a 16-byte random
 * value from the seed): over a TCP connection to itself in both directions,
 * in writes from 1 KB to 256 KiB, and as datagrams of every buffer size class
 * to a socket of its own, read whole, cut short (MSG_TRUNC) and peeked. Now
 * and then it closes a connection with marked data unread (a reset: the
 * kernel frees what it held). Every byte it gets back is checked: it is the
 * only domain that may see the marker, and it must see it where it sent it.
 * When done it tells the spies.
 */
import { AF_INET, defineProgram, MSG_PEEK, MSG_TRUNC, SO_RCVTIMEO, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, type SockAddr } from '@moat/libc';
import { markedData, otaMarker, sleep } from './library-kit.js';

export interface MarkedOtaArgs {
  seed: number;
  /** How long it keeps its data moving. */
  durationMs: number;
  /** The spies' control addresses, told 'done' at the end. */
  spies: SockAddr[];
}

export interface MarkedOtaResult {
  streamBytes: number;
  datagrams: number;
  datagramBytes: number;
  /** Connections closed with marked data unread. */
  resets: number;
  /** Bytes it received that were not the marked data it sent (must be 0). */
  wrongBytes: number;
  rounds: number;
  ms: number;
}

const STREAM_WRITES = [1000, 4096, 30_000, 65_536, 262_144];
const DATAGRAMS = [1, 100, 255, 1400, 2047, 4000, 8192, 16_000, 32_768, 65_000];

export default defineProgram<MarkedOtaArgs, MarkedOtaResult>(({ sys, args, log }) => {
  const marker = otaMarker(args.seed);
  const started = performance.now();
  const r: MarkedOtaResult = { streamBytes: 0, datagrams: 0, datagramBytes: 0, resets: 0, wrongBytes: 0, rounds: 0, ms: 0 };
  const listener = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(listener, { addr: '127.0.0.1', port: 0 });
  sys.listen(listener, 4);
  const connect = (): [number, number] => {
    const c = sys.socket(AF_INET, SOCK_STREAM);
    sys.connect(c, sys.getsockname(listener));
    const a = sys.accept(listener).handle;
    for (const s of [c, a]) sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, 5000);
    return [c, a];
  };
  let [client, accepted] = connect();
  const sink = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(sink, { addr: '127.0.0.1', port: 0 });
  const sinkAt = sys.getsockname(sink);
  const source = sys.socket(AF_INET, SOCK_DGRAM);
  /** Counts the bytes of `got` that differ from the marked data at `phase`. */
  const check = (got: Uint8Array, phase: number) => {
    for (let i = 0; i < got.length; i++) if (got[i] !== marker[(i + phase) % 16]) r.wrongBytes++;
  };
  /** Sends `n` marked bytes one way and reads them all at the other end. */
  const stream = (from: number, to: number, n: number, phase: number) => {
    sys.send(from, markedData(marker, n, phase));
    for (let got = 0; got < n; ) {
      const chunk = sys.recv(to, 1 << 20);
      if (chunk.length === 0) throw new Error('stream ended');
      check(chunk, (phase + got) % 16);
      got += chunk.length;
    }
    r.streamBytes += n;
  };

  for (let round = 0; performance.now() - started < args.durationMs; round++) {
    r.rounds++;
    for (const n of STREAM_WRITES) {
      stream(client, accepted, n, round % 16);
      stream(accepted, client, n, (round + 7) % 16);
    }
    for (const n of DATAGRAMS) {
      const data = markedData(marker, n);
      sys.sendto(source, data, sinkAt);
      const way = (round + n) % 3;
      if (way === 1) check(sys.recv(sink, 65536, MSG_PEEK), 0); // peeked, then read below
      const got = way === 2 ? sys.recvfrom(sink, Math.max(1, n >> 1)) : { data: sys.recv(sink, 65536), flags: 0 };
      if (way === 2 && n > 1 && !(got.flags & MSG_TRUNC)) r.wrongBytes++;
      check(got.data, 0);
      r.datagrams++;
      r.datagramBytes += n;
    }
    if (round % 4 === 3) {
      // Marked data left unread in both directions, then closed: the kernel resets and frees it.
      sys.send(client, markedData(marker, 50_000));
      sys.send(accepted, markedData(marker, 50_000));
      sleep(sys, 2); // lets the stack move it into the receive buffers
      sys.close(client);
      sys.close(accepted);
      r.resets++;
      [client, accepted] = connect();
    }
  }
  for (const s of [client, accepted, listener, sink]) sys.close(s);
  for (const spy of args.spies) sys.sendto(source, new TextEncoder().encode('done'), spy);
  sys.close(source);
  r.ms = Math.round(performance.now() - started);
  log(`moved ${r.streamBytes} stream bytes and ${r.datagrams} datagrams (${r.datagramBytes} B) in ${r.rounds} rounds, ${r.resets} resets, ${r.wrongBytes} wrong bytes`);
  return r;
});
