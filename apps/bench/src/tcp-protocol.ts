/**
 * The TCP runs that both Moat's domains and Node's `net` sockets make, so
 * that their figures compare: the same plan, the same write size, the same
 * reply, timed by the same code.
 *
 * Bulk: the source connects, writes `bytes` in writes of `writeSize`, shuts
 * its side down, and waits for the sink's reply: the 8-byte count of what
 * the sink read before the end of the stream. A transfer is timed from just
 * before connect to that reply, so it covers the handshake, the data and the
 * receiver having read every byte (plus one small segment back).
 *
 * Connections: the connector connects, waits for the end of the stream (the
 * acceptor accepts and closes at once), closes, and connects again; the next
 * connection starts only when the last one is over on both sides.
 */

export interface TcpBulkPlan {
  /** Bytes of each timed transfer (one connection each). */
  bytes: number;
  /** Bytes per write (send) call; the sink reads up to as much per recv. */
  writeSize: number;
  /** Bytes of each warm-up transfer. */
  warmupBytes: number;
  /**
   * Warm-up transfers (one connection each) before the timed ones: their
   * results are kept, marked, but no timed figure counts them. The first
   * is the transfer of a fresh machine.
   */
  warmupTransfers: number;
  /** Timed transfers, after the warm-up ones. */
  transfers: number;
}

export interface TcpConnectPlan {
  /** Timed connections, one after another. */
  connections: number;
  /** Untimed connections before them. */
  warmup: number;
  /** The rate is also kept per block of this many connections, to show a trend. */
  block: number;
}

export interface TransferResult {
  bytes: number;
  ms: number;
  /** A warm-up transfer's place among them (0: the first, on a fresh machine); absent for a timed one. */
  warmup?: number;
}

export interface ConnectResult {
  connections: number;
  ms: number;
  /** Connections per second of each block of `block` connections, in order. */
  blockRates: number[];
}

/** The sink's answer once the stream has ended: the bytes it read, as a big-endian float64. */
export function countReply(bytes: number): Uint8Array {
  const reply = new Uint8Array(8);
  new DataView(reply.buffer).setFloat64(0, bytes);
  return reply;
}

export function readCount(reply: Uint8Array): number {
  if (reply.byteLength !== 8) throw new Error(`the sink's reply has ${reply.byteLength} bytes, not 8`);
  return new DataView(reply.buffer, reply.byteOffset, 8).getFloat64(0);
}

/** One connection of the source, as each side's sockets provide it. */
export interface BulkConnection {
  /** Hands the whole chunk over (a blocking send, or a write that waits for 'drain' when the socket says so). */
  write(chunk: Uint8Array): void | Promise<void>;
  /** Ends our side of the stream and returns the sink's 8-byte reply. */
  finish(): Uint8Array | Promise<Uint8Array>;
  close(): void | Promise<void>;
}

/** Runs the warm-up transfers, then the timed ones, and returns them all; `connect(i)` opens the i-th connection. */
export async function runBulkSource(plan: TcpBulkPlan, connect: (i: number) => BulkConnection | Promise<BulkConnection>): Promise<TransferResult[]> {
  if (plan.writeSize <= 0 || plan.bytes <= 0) throw new Error('a transfer needs bytes and a write size');
  const chunk = new Uint8Array(plan.writeSize).fill(0x5a);
  const sizes = [...Array.from({ length: plan.warmupTransfers }, () => plan.warmupBytes), ...Array.from({ length: plan.transfers }, () => plan.bytes)];
  const results: TransferResult[] = [];
  for (const [i, bytes] of sizes.entries()) {
    const t = performance.now();
    const c = await connect(i);
    for (let sent = 0; sent < bytes; sent += plan.writeSize) {
      const left = bytes - sent;
      await c.write(left >= plan.writeSize ? chunk : chunk.subarray(0, left));
    }
    const read = readCount(await c.finish());
    const ms = performance.now() - t;
    await c.close();
    if (read !== bytes) throw new Error(`the sink read ${read} bytes of ${bytes}`);
    results.push(i < plan.warmupTransfers ? { bytes, ms, warmup: i } : { bytes, ms });
  }
  return results;
}

/** Bulk transfers the sink takes: the warm-up ones and the timed ones. */
export const bulkConnections = (plan: TcpBulkPlan): number => plan.warmupTransfers + plan.transfers;

/** The timed transfers of a run's results. */
export const timed = (results: TransferResult[]): TransferResult[] => results.filter((r) => r.warmup === undefined);

/** The first transfer of each fresh machine in a run's results (one per pass). */
export const freshMachine = (results: TransferResult[]): TransferResult[] => results.filter((r) => r.warmup === 0);

/** Runs `once(i)` (connect, wait for the end of the stream, close) for the warm-up connections, then the timed ones. */
export async function runConnector(plan: TcpConnectPlan, once: (i: number) => void | Promise<void>): Promise<ConnectResult> {
  for (let i = 0; i < plan.warmup; i++) await once(i);
  const blockRates: number[] = [];
  const start = performance.now();
  let blockStart = start;
  for (let i = 0; i < plan.connections; i++) {
    await once(plan.warmup + i);
    const done = i + 1;
    if (done % plan.block === 0 || done === plan.connections) {
      const now = performance.now();
      const inBlock = done % plan.block === 0 ? plan.block : done % plan.block;
      blockRates.push(inBlock / ((now - blockStart) / 1000));
      blockStart = now;
    }
  }
  return { connections: plan.connections, ms: performance.now() - start, blockRates };
}

/** Connections the acceptor takes: the warm-up ones and the timed ones. */
export const acceptedConnections = (plan: TcpConnectPlan): number => plan.warmup + plan.connections;

