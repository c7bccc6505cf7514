/**
 * The OTA updater of the isolation library: downloads the image from the TCP
 * update server (update-server-tcp), as ota-tcp does, but stops halfway, with
 * data queued in its connection, and starts a neighbour: it tells it where
 * its sockets are (ports and handle numbers), then waits on a side
 * connection until the neighbour reports back in order (an attacker when its
 * attacks are over) or resets it by dying (a library that crashes, hangs or
 * runs out of memory). Only then does it read the rest. So whatever the
 * neighbour does happens while the OTA's connection is live and mid-transfer.
 *
 * At the end it checks that its socket is as it left it (options, mode,
 * addresses): a hostile call that reached it would show there.
 */
import { createHash } from 'node:crypto';
import {
  AF_INET,
  defineProgram,
  F_GETFL,
  F_SETFL,
  IPPROTO_TCP,
  O_NONBLOCK,
  SO_KEEPALIVE,
  SO_RCVTIMEO,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  TCP_NODELAY,
  type SockAddr,
} from '@moat/libc';
import { readToEnd, type MidwayInfo } from './library-kit.js';

export interface OtaStreamArgs {
  server: SockAddr;
  /** The local port it connects from, bound on every address. */
  port: number;
  /** Halfway through, the neighbour to start (its UDP control address) and the side port to wait on. */
  midway?: { neighbour: SockAddr; sidePort: number; waitMs: number };
}

export interface OtaStreamResult {
  bytes: number;
  intact: boolean;
  sha256: string;
  ms: number;
  midway?: {
    /** Image bytes received when the neighbour was started. */
    at: number;
    /** How the side connection ended: 'eof' (the neighbour's report, in order), 'ECONNRESET' (it died), 'timeout'. */
    ending: string;
    report: string;
    waitedMs: number;
    /** Connections the side listener accepted (the neighbour's only). */
    accepted: number;
  };
  /** Each property of the download socket, checked at the end against what the OTA set. */
  socketChecks: Record<string, boolean>;
}

/** A receive timeout no attacker would pick: the check that nobody else set it. */
const RCVTIMEO_MS = 20_000 + 357;

export default defineProgram<OtaStreamArgs, OtaStreamResult>(({ sys, args, name, log }) => {
  const s = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(s, { addr: '0.0.0.0', port: args.port });
  const started = performance.now();
  sys.connect(s, args.server);
  sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, RCVTIMEO_MS);
  sys.setsockopt(s, IPPROTO_TCP, TCP_NODELAY, 1);
  sys.setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, 1);
  const local = sys.getsockname(s);
  sys.send(s, new TextEncoder().encode('GET'));
  const readInto = (out: Uint8Array, from: number, to: number) => {
    for (let got = from; got < to; ) {
      const chunk = sys.recv(s, Math.min(to - got, 1 << 20));
      if (chunk.length === 0) throw new Error(`stream ended after ${got} of ${to} bytes`);
      out.set(chunk, got);
      got += chunk.length;
    }
  };
  const header = new Uint8Array(36);
  readInto(header, 0, 36);
  const size = new DataView(header.buffer).getUint32(0);
  const expected = header.slice(4);
  log(`image of ${size} bytes over TCP`);
  const image = new Uint8Array(size);
  const half = Math.floor(size / 2);
  readInto(image, 0, half);

  let midway: OtaStreamResult['midway'];
  if (args.midway) {
    const side = sys.socket(AF_INET, SOCK_STREAM);
    sys.bind(side, { addr: '127.0.0.1', port: args.midway.sidePort });
    sys.listen(side, 4);
    sys.setsockopt(side, SOL_SOCKET, SO_RCVTIMEO, args.midway.waitMs);
    const control = sys.socket(AF_INET, SOCK_DGRAM);
    const info: MidwayInfo = { handles: { download: s, side, control }, port: args.port, sidePort: args.midway.sidePort, server: args.server, name };
    const waitStart = performance.now();
    sys.sendto(control, new TextEncoder().encode(JSON.stringify(info)), args.midway.neighbour);
    log(`midway at ${half} bytes: neighbour started`);
    let accepted = 0;
    let ending = 'timeout';
    let report = '';
    try {
      const conn = sys.accept(side).handle;
      accepted++;
      ({ ending, text: report } = readToEnd(sys, conn, args.midway.waitMs));
      sys.close(conn);
    } catch (err) {
      ending = (err as { code?: string }).code === 'EAGAIN' ? 'timeout' : String((err as Error).message);
    }
    // Anyone else who connected meanwhile is counted, not served.
    sys.fcntl(side, F_SETFL, O_NONBLOCK);
    for (;;) {
      try {
        sys.close(sys.accept(side).handle);
        accepted++;
      } catch {
        break;
      }
    }
    sys.close(side);
    sys.close(control);
    midway = { at: half, ending, report, waitedMs: Math.round(performance.now() - waitStart), accepted };
    log(`neighbour's side connection ended: ${ending}`);
  }

  readInto(image, half, size);
  const ms = Math.round(performance.now() - started);
  const peer = sys.getpeername(s);
  const now = sys.getsockname(s);
  const socketChecks = {
    'SO_RCVTIMEO as set': sys.getsockopt(s, SOL_SOCKET, SO_RCVTIMEO) === RCVTIMEO_MS,
    'TCP_NODELAY as set': sys.getsockopt(s, IPPROTO_TCP, TCP_NODELAY) === 1,
    'SO_KEEPALIVE as set': sys.getsockopt(s, SOL_SOCKET, SO_KEEPALIVE) === 1,
    'blocking mode': sys.fcntl(s, F_GETFL) === 0,
    'local address': now.addr === local.addr && now.port === args.port,
    'peer address': peer.addr === args.server.addr && peer.port === args.server.port,
  };
  sys.send(s, new TextEncoder().encode('BYE'));
  sys.close(s);
  const digest = createHash('sha256').update(image).digest();
  const intact = Buffer.compare(digest, expected) === 0;
  log(`image ${intact ? 'intact' : 'CORRUPT'}: sha256 ${digest.toString('hex').slice(0, 16)}...`);
  return { bytes: size, intact, sha256: digest.toString('hex'), ms, midway, socketChecks };
});
