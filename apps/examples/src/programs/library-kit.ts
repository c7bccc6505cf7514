/**
 * What the example programs share, the isolation library's above all:
 * attempt tallies, seeded bytes, a sleep that blocks in the kernel, the
 * midway handshake between an OTA and the neighbour it starts halfway
 * through its download, and the scanner that looks for the OTA's marker.
 *
 * The tallies have @moat/sim's `Attempt` shape (the report shows them as
 * such) but are counted here: importing @moat/sim would load the host's
 * simulator into every domain worker, which costs as much start-up time as
 * @moat/libc itself.
 */
import { createHash } from 'node:crypto';
import { AF_INET, SOCK_STREAM, SO_RCVTIMEO, SOL_SOCKET, type SockAddr, type SyncSockets } from '@moat/libc';
import type { Attempt } from '@moat/sim';

export type { Attempt };

/** A new tally, appended to `list` so the report shows attempts in the order they were made. */
export function attempt(list: Attempt[], name: string, note?: string): Attempt {
  const a: Attempt = { name, tries: 0, outcomes: {}, breaches: 0, note };
  list.push(a);
  return a;
}

/** Adds one result ('OK', an errno name, or a word of the program's own) to a tally. */
export function record(a: Attempt, outcome: string, breach = false): void {
  a.tries++;
  a.outcomes[outcome] = (a.outcomes[outcome] ?? 0) + 1;
  if (breach) a.breaches++;
}

/** `n` bytes that depend only on `label` and `seed` (SHA-256 in counter mode). */
export function seededBytes(label: string, seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0, i = 0; off < n; off += 32, i++) {
    const block = createHash('sha256').update(`${label}:${seed}:${i}`).digest();
    out.set(block.subarray(0, Math.min(32, n - off)), off);
  }
  return out;
}

/** A small seeded generator of 32-bit integers (splitmix32), for choices that must replay from the seed. */
export function seededInts(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Blocks this domain for `ms` inside the kernel (a poll of nothing), as a sleeping thread would. */
export function sleep(sys: SyncSockets, ms: number): void {
  sys.poll([], Math.max(1, Math.round(ms)));
}

// ---- the midway handshake ------------------------------------------------

/**
 * What the OTA tells the neighbour it starts halfway through its download:
 * where its sockets are (ports, and handle numbers, as a library linked
 * into the app could learn them), and where to report back.
 */
export interface MidwayInfo {
  /** The OTA's handle numbers, by what they are. */
  handles: Record<string, number>;
  /** The OTA's TCP port (bound on every address, connected to the server). */
  port: number;
  /** The OTA's listening side port on 127.0.0.1, where the neighbour reports back. */
  sidePort: number;
  /** The server the OTA is connected to. */
  server: SockAddr;
  /** The OTA's name, for grants and revokes aimed at it. */
  name: string;
}

/** The neighbour's side: waits on `control` for the OTA's start datagram and returns what it says and where it came from. */
export function awaitMidway(sys: SyncSockets, control: number): { info: MidwayInfo; from: SockAddr } {
  const { data, from } = sys.recvfrom(control, 4096);
  return { info: JSON.parse(new TextDecoder().decode(data)) as MidwayInfo, from };
}

/**
 * Connects to the OTA's side port; the OTA waits on this connection until it
 * ends, in order (the neighbour's report, then the end of the stream) or by a
 * reset (the neighbour died).
 */
export function connectSide(sys: SyncSockets, info: MidwayInfo): number {
  const side = sys.socket(AF_INET, SOCK_STREAM);
  sys.connect(side, { addr: '127.0.0.1', port: info.sidePort });
  return side;
}

/** Ends the side connection in order, with a short report the OTA keeps. */
export function reportSide(sys: SyncSockets, side: number, report: string): void {
  sys.send(side, new TextEncoder().encode(report));
  sys.close(side);
}

/** Reads a stream until its end; how it ended: 'eof', an errno name, and what it carried. */
export function readToEnd(sys: SyncSockets, s: number, timeoutMs: number): { ending: string; text: string } {
  sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, timeoutMs);
  const parts: Uint8Array[] = [];
  for (;;) {
    let chunk: Uint8Array;
    try {
      chunk = sys.recv(s, 65536);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (!code) throw err;
      return { ending: code === 'EAGAIN' ? 'timeout' : code, text: new TextDecoder().decode(Buffer.concat(parts)) };
    }
    if (chunk.length === 0) return { ending: 'eof', text: new TextDecoder().decode(Buffer.concat(parts)) };
    parts.push(chunk.slice());
  }
}

// ---- the marker ----------------------------------------------------------

/** The OTA's marker: 16 random bytes from the seed. */
export function otaMarker(seed: number): Uint8Array {
  return seededBytes('moat-ota-marker', seed, 16);
}

/** `n` bytes of the OTA's data: the marker over and over, starting at `phase` within it. */
export function markedData(marker: Uint8Array, n: number, phase = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = marker[(i + phase) % marker.length]!;
  return out;
}

/**
 * Looks for the OTA's data in buffers. The needle is the marker's first 8
 * bytes: any run of 23 or more bytes of the OTA's data (the marker repeated)
 * holds it at some offset, so a leak that long cannot be missed, and a
 * random 8-byte match is a 2^-64 event per offset.
 */
export class MarkerScanner {
  private readonly needle: Buffer;
  buffers = 0;
  bytes = 0;
  hits = 0;
  /** Where hits were found (the first few), for the report. */
  readonly where: string[] = [];

  constructor(marker: Uint8Array) {
    this.needle = Buffer.from(marker.subarray(0, 8));
  }

  /** Scans `bytes` and, when `behind` is set, the whole memory behind the view (what the domain was really handed). */
  scan(what: string, bytes: Uint8Array, behind = true): boolean {
    const views = [bytes];
    if (behind && (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength)) {
      views.push(new Uint8Array(bytes.buffer as ArrayBuffer));
    }
    let found = false;
    for (const v of views) {
      this.buffers++;
      this.bytes += v.byteLength;
      if (Buffer.from(v.buffer, v.byteOffset, v.byteLength).indexOf(this.needle) >= 0) found = true;
    }
    if (found) {
      this.hits++;
      if (this.where.length < 5) this.where.push(what);
    }
    return found;
  }

  /** True when the scanner finds the marker planted in data of the OTA's kind (the scan's positive control). */
  selfTest(marker: Uint8Array): boolean {
    const probe = new MarkerScanner(marker);
    const planted = new Uint8Array(100).fill(0x5a);
    planted.set(markedData(marker, 23, 11), 40); // the shortest run it promises to catch, at an awkward phase
    return probe.scan('self-test', planted, false);
  }
}
