/**
 * A spy of confidentiality: a neighbour of the OTA on the same kernel that
 * churns the kernel's buffers (datagrams of every size class to itself, a TCP
 * connection to itself, pings to itself) and scans every byte it is ever
 * handed for the OTA's marker: each datagram and stream chunk it receives,
 * read whole, cut short, peeked or with a huge maxlen, and the whole memory
 * behind each (a received view shares the reply frame's memory); and raw
 * reply frames, taken as they arrived (ctx.channel.rawSyncBytes), of
 * receives, stats, names, new sockets, errors and malformed frames. It knows
 * the marker (from the seed) only to look for it. It stops when the OTA says
 * 'done'.
 */
import { decodeFrame, encodeRequest, SYS } from '@moat/abi/core';
import { AF_INET, defineProgram, errnoOf, IPPROTO_ICMP, MSG_DONTWAIT, MSG_PEEK, SO_RCVTIMEO, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET } from '@moat/libc';
import { MarkerScanner, otaMarker } from './library-kit.js';

export interface SpyArgs {
  controlPort: number;
  seed: number;
  /** It gives up waiting for 'done' after this long. */
  maxMs: number;
}

export interface SpyResult {
  buffers: number;
  bytes: number;
  hits: number;
  where: string[];
  /** The scanner found a marker planted in a buffer (its positive control). */
  selfTest: boolean;
  rounds: number;
  /** Buffers scanned per path. */
  paths: Record<string, number>;
  /** Whether the OTA's 'done' ended it (rather than maxMs). */
  toldDone: boolean;
}

const SIZES = [1, 200, 256, 1000, 1472, 2048, 3000, 4096, 8000, 16_384, 30_000, 65_000];
/** Raw request ids: far above the channel's own, so no reply is mistaken for another call's. */
const RAW_IDS = 0xe0000000;

export default defineProgram<SpyArgs, SpyResult>(({ sys, channel, args, log }) => {
  const marker = otaMarker(args.seed);
  const scanner = new MarkerScanner(marker);
  const selfTest = scanner.selfTest(marker);
  const paths: Record<string, number> = {};
  const scan = (path: string, bytes: Uint8Array) => {
    paths[path] = (paths[path] ?? 0) + 1;
    if (scanner.scan(path, bytes)) log(`MARKER SEEN in ${path} (${bytes.byteLength} bytes)`);
  };
  let rawId = RAW_IDS;
  const raw = (path: string, sysno: number, callArgs: unknown[]) => {
    const reply = channel.rawSyncBytes(encodeRequest(rawId++, sysno, callArgs));
    scan(path, reply);
    return decodeFrame(reply) as [number, number, unknown];
  };

  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(control, { addr: '127.0.0.1', port: args.controlPort });
  log('loaded');
  const a = sys.socket(AF_INET, SOCK_DGRAM);
  const b = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(b, { addr: '127.0.0.1', port: 0 });
  const bAt = sys.getsockname(b);
  const listener = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(listener, { addr: '127.0.0.1', port: 0 });
  sys.listen(listener, 2);
  const client = sys.socket(AF_INET, SOCK_STREAM);
  sys.connect(client, sys.getsockname(listener));
  const server = sys.accept(listener).handle;
  sys.setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, 5000);
  const ping = sys.socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  sys.setsockopt(ping, SOL_SOCKET, SO_RCVTIMEO, 5000);

  const started = performance.now();
  let rounds = 0;
  let toldDone = false;
  while (performance.now() - started < args.maxMs) {
    if (errnoOf(() => sys.recv(control, 16, MSG_DONTWAIT)) === 0) {
      toldDone = true;
      break;
    }
    rounds++;
    for (const [i, n] of SIZES.entries()) {
      const data = new Uint8Array(n).fill(0x5a);
      sys.sendto(a, data, bAt);
      // Each size read a different way, turn by turn: whole, cut short, peeked first, with a huge maxlen, raw.
      switch ((rounds + i) % 5) {
        case 0:
          scan('udp recv', sys.recv(b, 65536));
          break;
        case 1:
          scan('udp recv, cut short', sys.recvfrom(b, Math.max(1, n >> 2)).data);
          break;
        case 2:
          scan('udp peek', sys.recv(b, 65536, MSG_PEEK));
          scan('udp recv', sys.recv(b, 65536));
          break;
        case 3:
          scan('udp recv, huge maxlen', sys.recv(b, 1 << 30));
          break;
        default:
          raw('raw reply: recvfrom', SYS.recvfrom, [b, 1 << 20, 0]);
      }
    }
    // A stream to itself: what a chunk of it carries, and the memory behind it.
    sys.send(client, new Uint8Array(20_000 + rounds * 97).fill(0x3c));
    for (let got = 0; got < 20_000 + rounds * 97; ) {
      const chunk = sys.recv(server, 1 << 20);
      scan('tcp recv', chunk);
      got += chunk.length;
    }
    // A ping to itself: the echo reply is built by the kernel from the request.
    const echo = new Uint8Array(8 + 1000 + (rounds % 7) * 500).fill(0x11);
    echo[0] = 8; // echo request
    echo[1] = 0;
    sys.sendto(ping, echo, { addr: '127.0.0.1', port: 0 });
    scan('ping reply', sys.recvfrom(ping, 65536).data);
    // Replies that carry no data: each must be exactly its own bytes.
    raw('raw reply: stats', SYS.stats, []);
    raw('raw reply: getsockname', SYS.getsockname, [b]);
    const [, , made] = raw('raw reply: socket', SYS.socket, [AF_INET, SOCK_DGRAM, 0]);
    raw('raw reply: close', SYS.close, [made]);
    raw('raw reply: error', SYS.recvfrom, [made, 100, MSG_DONTWAIT]);
    raw('raw reply: empty receive', SYS.recvfrom, [b, 100, MSG_DONTWAIT]);
    raw('raw reply: unknown call', 9999, []);
    raw('raw reply: bad arguments', SYS.sendto, [b, 'not bytes', 0, bAt]);
  }
  for (const s of [a, b, client, server, listener, ping, control]) sys.close(s);
  log(`${scanner.buffers} buffers (${scanner.bytes} bytes) scanned in ${rounds} rounds: ${scanner.hits} held the marker`);
  return { buffers: scanner.buffers, bytes: scanner.bytes, hits: scanner.hits, where: scanner.where, selfTest, rounds, paths, toldDone };
});
