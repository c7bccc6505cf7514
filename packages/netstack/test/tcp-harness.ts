/**
 * Two TcpConnections joined by an in-process pipe on a virtual clock: every
 * segment is emitted to bytes and parsed back (checksums included), the pipe
 * loses, duplicates, delays and corrupts as a seeded generator says, and time
 * jumps from one event to the next, so long transfers run fast and the same
 * seed gives the same run.
 */
import { emitTcpHeader, parseTcp, tcpHeaderLength, TCP_ACK, TCP_RST } from '../src/wire/tcp.js';
import { Xoshiro128 } from '../src/link/rng.js';
import { TcpConnection, type OutSegment, type TcpConfig } from '../src/tcp/connection.js';

export const A_ADDR = 0x0a000001;
export const B_ADDR = 0x0a000002;

export interface PipeFaults {
  latencyMs: number;
  loss: number;
  duplicate: number;
  /** Extra delay for a reordered segment. */
  reorder: number;
  corrupt: number;
}

const PERFECT: PipeFaults = { latencyMs: 1, loss: 0, duplicate: 0, reorder: 0, corrupt: 0 };

export type Side = 'a' | 'b';

export class TcpPair {
  now = 0;
  readonly a: TcpConnection;
  b: TcpConnection | undefined;
  private readonly rng: Xoshiro128;
  private readonly faults: PipeFaults;
  private inFlight: { at: number; to: Side; bytes: Uint8Array; order: number }[] = [];
  private order = 0;
  readonly counts = { sent: 0, lost: 0, corrupted: 0, checksumDrops: 0, resetsFromClosedPort: 0 };

  /** Loses the segments it returns true for, besides the seeded faults (to make chosen holes). */
  lose: ((seg: OutSegment, to: Side) => boolean) | undefined;
  /** Cuts the wire both ways: every segment is lost (for give-up and keepalive tests). */
  cut = false;
  /** With no B: true drops everything sent to it silently (its host vanished); false answers with RSTs (a closed port). */
  blackhole = false;
  /** Whether B takes a SYN as a listener would (false: B opens actively too, for a simultaneous open). */
  bListens: boolean;

  /** `b: null`: nobody listens at B, which answers every segment with a RST as a closed port does. */
  constructor(options: { seed?: number; faults?: Partial<PipeFaults>; a?: Partial<TcpConfig>; b?: Partial<TcpConfig> | null; bListens?: boolean } = {}) {
    this.bListens = options.bListens ?? true;
    this.rng = new Xoshiro128(options.seed ?? 1);
    this.faults = { ...PERFECT, ...options.faults };
    this.a = new TcpConnection({ localAddr: A_ADDR, localPort: 40000, remoteAddr: B_ADDR, remotePort: 80 }, 1000, 0, options.a);
    if (options.b !== null) this.b = new TcpConnection({ localAddr: B_ADDR, localPort: 80, remoteAddr: A_ADDR, remotePort: 40000 }, 900_000_000, 0, options.b ?? {});
  }

  /** A opens actively, and the pair runs until both ends are ESTABLISHED (B listens by default). */
  establish(): this {
    this.a.open(0);
    this.run(() => this.a.established && this.b!.established);
    return this;
  }

  /** Runs until `done()` or until nothing is left to happen or `limitMs` of virtual time passed. */
  run(done: () => boolean, limitMs = 600_000): void {
    for (let steps = 0; steps < 10_000_000; steps++) {
      this.flush();
      if (done()) return;
      const next = this.nextEvent();
      if (next === undefined || next > limitMs) return;
      this.now = Math.max(this.now, next);
      this.deliver();
    }
    throw new Error('simulation did not settle');
  }

  private conn(side: Side): TcpConnection | undefined {
    return side === 'a' ? this.a : this.b;
  }

  /** Puts a hand-made segment on the wire to `to`, as if the other side had sent it (for injection tests). */
  inject(to: Side, seg: OutSegment): void {
    this.transmit(to, seg, to === 'b' ? [A_ADDR, B_ADDR] : [B_ADDR, A_ADDR]);
  }

  /** Collects what each side wants to send now and puts it on the wire. */
  flush(): void {
    for (let again = true; again; ) {
      again = false;
      for (const side of ['a', 'b'] as const) {
        const c = this.conn(side);
        if (!c) continue;
        for (const seg of c.output(this.now)) {
          again = true;
          this.transmit(side === 'a' ? 'b' : 'a', seg, side === 'a' ? [A_ADDR, B_ADDR] : [B_ADDR, A_ADDR]);
        }
      }
    }
  }

  private transmit(to: Side, seg: OutSegment, [src, dst]: [number, number]): void {
    this.counts.sent++;
    const f = this.faults;
    const roll = () => this.rng.nextFloat();
    const [lose, dup, reorder, corrupt] = [roll(), roll(), roll(), roll()];
    if (lose < f.loss || this.cut || this.lose?.(seg, to)) return void this.counts.lost++;
    const bytes = new Uint8Array(tcpHeaderLength(seg.header.options) + seg.payload.length);
    bytes.set(seg.payload, bytes.length - seg.payload.length);
    emitTcpHeader(seg.header, src, dst, seg.payload.length, bytes);
    const copies = dup < f.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const b = bytes.slice();
      if (corrupt < f.corrupt && i === 0) {
        b[this.rng.nextUint32() % b.length]! ^= 1 << (this.rng.nextUint32() % 8);
        this.counts.corrupted++;
      }
      const delay = f.latencyMs + (reorder < f.reorder ? f.latencyMs * 3 : 0) + i;
      this.inFlight.push({ at: this.now + delay, to, bytes: b, order: this.order++ });
    }
  }

  private nextEvent(): number | undefined {
    let next: number | undefined;
    const consider = (t: number | undefined) => {
      if (t !== undefined && (next === undefined || t < next)) next = t;
    };
    for (const p of this.inFlight) consider(p.at);
    consider(this.a.deadline());
    consider(this.b?.deadline());
    return next;
  }

  private deliver(): void {
    const due = this.inFlight.filter((p) => p.at <= this.now).sort((x, y) => x.at - y.at || x.order - y.order);
    this.inFlight = this.inFlight.filter((p) => p.at > this.now);
    if (this.cut) return void (this.counts.lost += due.length); // a cut wire loses what was on it too
    for (const p of due) {
      const [src, dst] = p.to === 'b' ? [A_ADDR, B_ADDR] : [B_ADDR, A_ADDR];
      const parsed = parseTcp(p.bytes, src, dst);
      if (!parsed.ok) {
        this.counts.checksumDrops++;
        continue;
      }
      const target = this.conn(p.to);
      const seg = parsed.value;
      // B listens: a SYN for it while it has no connection yet opens one passively.
      if (target === this.b && target && target.state === 'CLOSED' && this.bListens && seg.flags & 0x02 && !(seg.flags & TCP_ACK)) {
        target.accept(seg, this.now);
      } else if (target) {
        target.input(seg, seg.payload, this.now);
        // As the stack's TCP layer does: an ACK that must not wait (duplicate, hole filled, every second segment) leaves now.
        if (target.ackUrgent) for (const out of target.output(this.now)) this.transmit(p.to === 'a' ? 'b' : 'a', out, [dst, src]);
      }
      else if (!(seg.flags & TCP_RST) && !this.blackhole) this.resetFromClosedPort(seg);
    }
  }

  /** RFC 9293 3.10.7.1: a closed port answers a segment without RST with a RST. */
  private resetFromClosedPort(seg: { seq: number; ack: number; flags: number; payload: Uint8Array; srcPort: number; dstPort: number }): void {
    this.counts.resetsFromClosedPort++;
    const synOrFin = (seg.flags & 0x02 ? 1 : 0) + (seg.flags & 0x01 ? 1 : 0);
    const header = seg.flags & TCP_ACK
      ? { seq: seg.ack, ack: 0, flags: TCP_RST }
      : { seq: 0, ack: (seg.seq + seg.payload.length + synOrFin) >>> 0, flags: TCP_RST | TCP_ACK };
    this.transmit('a', { header: { srcPort: seg.dstPort, dstPort: seg.srcPort, window: 0, urgentPointer: 0, options: {}, ...header }, payload: new Uint8Array(0), payloadStable: true }, [B_ADDR, A_ADDR]);
  }
}

/** A bare RST with sequence number `seq`, as the other side would send it to `to`. */
export function rstTo(to: Side, seq: number): OutSegment {
  const [srcPort, dstPort] = to === 'a' ? [80, 40000] : [40000, 80];
  return { header: { srcPort, dstPort, seq, ack: 0, flags: TCP_RST, window: 0, urgentPointer: 0, options: {} }, payload: new Uint8Array(0), payloadStable: true };
}

/** A deterministic byte stream of `n` bytes. */
export function pattern(n: number, seed = 1): Uint8Array {
  const rng = new Xoshiro128(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const v = rng.nextUint32();
    out[i] = v & 0xff;
    if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < n) out[i + 3] = v >>> 24;
  }
  return out;
}

/** Writes `data` from A to B, reading at B as it arrives; closes A when all is written, and B when it sees EOF. */
export function transfer(pair: TcpPair, data: Uint8Array, limitMs = 3_600_000): Uint8Array {
  const received: Uint8Array[] = [];
  let got = 0;
  let written = 0;
  let closedA = false;
  let closedB = false;
  pair.a.open(pair.now);
  pair.run(() => {
    if (written < data.length) written += pair.a.write(data.subarray(written, written + 65536));
    if (written === data.length && !closedA && pair.a.established) {
      pair.a.close(pair.now);
      closedA = true;
    }
    const b = pair.b!;
    while (b.readable > 0) {
      const chunk = b.read(65536);
      received.push(chunk);
      got += chunk.length;
    }
    if (b.atEof && !closedB) {
      b.close(pair.now);
      closedB = true;
    }
    return closedA && closedB && pair.a.state === 'TIME_WAIT' && b.state === 'CLOSED';
  }, limitMs);
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of received) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
