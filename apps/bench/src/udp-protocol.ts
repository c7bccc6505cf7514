/**
 * The windowed UDP transfer that both Moat's domains and Node's dgram
 * sockets run, so that their throughputs compare. The sender sends a window
 * of datagrams, the last one asking for an acknowledgement, and waits for
 * it before the next window: the receiver's queue then never holds more than
 * a window, as with any flow control. A datagram the receiver's bounded FIFO
 * drops is not sent again; the acknowledgement says how many arrived, and
 * only those count.
 *
 * Every datagram starts with a 12-byte header:
 *   kind u8 | 0 u8 | round u16 | window u32 | count u32
 */

export const Kind = {
  DATA: 1,
  /** The last datagram of a window: acknowledge it. */
  DATA_ACK: 2,
  /** The sender heard no acknowledgement in time (the last datagram was dropped): acknowledge again. */
  ACK_REQ: 3,
  /** count = datagrams of this round delivered so far. */
  ACK: 4,
  DONE: 5,
} as const;

export const HEADER_BYTES = 12;

export interface UdpPlan {
  /** Bytes of each data datagram, header included. */
  size: number;
  /** Datagrams per acknowledgement. */
  window: number;
  /** Datagrams per round. */
  datagrams: number;
  /** Measured rounds, after one warm-up round. */
  rounds: number;
  /** Wait this long for an acknowledgement before asking again. */
  ackTimeoutMs: number;
}

export interface RoundResult {
  ms: number;
  sent: number;
  delivered: number;
  /** Acknowledgements that had to be asked for again. */
  ackTimeouts: number;
}

/** How the sender reaches its socket. */
export interface SenderIo {
  /** Sends every frame to the receiver; resolves when all were accepted (the frames may then be reused). */
  sendAll(frames: Uint8Array[]): Promise<void>;
  /** The next datagram from the receiver, or undefined after the acknowledgement timeout. */
  receive(): Promise<Uint8Array | undefined>;
}

function view(m: Uint8Array): DataView {
  return new DataView(m.buffer, m.byteOffset, m.byteLength);
}

export function writeHeader(m: Uint8Array, kind: number, round: number, window: number, count = 0): Uint8Array {
  const v = view(m);
  v.setUint8(0, kind);
  v.setUint16(2, round);
  v.setUint32(4, window);
  v.setUint32(8, count);
  return m;
}

export function readHeader(m: Uint8Array): { kind: number; round: number; window: number; count: number } | undefined {
  if (m.byteLength < HEADER_BYTES) return undefined;
  const v = view(m);
  return { kind: v.getUint8(0), round: v.getUint16(2), window: v.getUint32(4), count: v.getUint32(8) };
}

const control = (kind: number, round: number, window: number, count = 0) =>
  writeHeader(new Uint8Array(HEADER_BYTES), kind, round, window, count);

/** Runs one warm-up round and `plan.rounds` measured ones; returns the measured ones. */
export async function runSender(io: SenderIo, plan: UdpPlan): Promise<RoundResult[]> {
  if (plan.size < HEADER_BYTES) throw new Error(`datagrams must hold the ${HEADER_BYTES}-byte header`);
  const frames = Array.from({ length: plan.window }, () => new Uint8Array(plan.size));
  let window = 0;
  let ackTimeouts = 0;

  /** Waits for the acknowledgement of `w`, sending `again` whenever it does not come in time. */
  const acknowledged = async (w: number, again: Uint8Array): Promise<number> => {
    for (let tries = 0; tries < 1000; tries++) {
      const m = await io.receive();
      if (!m) {
        ackTimeouts++;
        await io.sendAll([again]);
        continue;
      }
      const h = readHeader(m);
      if (h?.kind === Kind.ACK && h.window === w) return h.count; // older acknowledgements are stale
    }
    throw new Error(`no acknowledgement for window ${w}`);
  };

  const results: RoundResult[] = [];
  for (let round = 0; round <= plan.rounds; round++) {
    ackTimeouts = 0;
    let sent = 0;
    let delivered = 0;
    const t = performance.now();
    while (sent < plan.datagrams) {
      const batch = frames.slice(0, Math.min(plan.window, plan.datagrams - sent));
      batch.forEach((f, i) => writeHeader(f, i === batch.length - 1 ? Kind.DATA_ACK : Kind.DATA, round, window));
      await io.sendAll(batch);
      sent += batch.length;
      delivered = await acknowledged(window, control(Kind.ACK_REQ, round, window));
      window++;
    }
    results.push({ ms: performance.now() - t, sent, delivered, ackTimeouts });
  }
  const done = control(Kind.DONE, 0, window);
  await io.sendAll([done]);
  await acknowledged(window, done);
  return results.slice(1);
}

/** The receiving side: counts what arrives and says what to answer. */
export class Receiver {
  /** Data datagrams delivered, per round. */
  readonly delivered: number[] = [];
  finished = false;

  /** Takes one datagram; returns the reply for its sender, if any. */
  take(m: Uint8Array): Uint8Array | undefined {
    const h = readHeader(m);
    if (!h) return undefined;
    if (h.kind === Kind.DATA || h.kind === Kind.DATA_ACK) this.delivered[h.round] = (this.delivered[h.round] ?? 0) + 1;
    if (h.kind === Kind.DATA_ACK || h.kind === Kind.ACK_REQ) return control(Kind.ACK, h.round, h.window, this.delivered[h.round] ?? 0);
    if (h.kind === Kind.DONE) {
      this.finished = true;
      return control(Kind.ACK, h.round, h.window);
    }
    return undefined;
  }
}
