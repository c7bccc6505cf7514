import { describe, expect, it } from 'vitest';
import { bellRung, conduct, newBell, ring, waitForBell } from '../src/doorbell.js';
import { addCounters, FULL, framesPerDatagram, judgeTargets, linkReport, QUICK, ratesByPass, startupBracket, tcpBulkReport, tcpConnectReport, type Figure } from '../src/figures.js';
import { aggregateRate, byTrial } from '../src/measure.js';
import { growthPer, type MemoryReading } from '../src/memory.js';
import { median, quantile, summarize } from '../src/stats.js';
import {
  acceptedConnections,
  bulkConnections,
  countReply,
  freshMachine,
  readCount,
  runBulkSource,
  runConnector,
  timed,
  type BulkConnection,
  type TcpBulkPlan,
} from '../src/tcp-protocol.js';
import { Kind, readHeader, Receiver, runSender, type SenderIo, type UdpPlan } from '../src/udp-protocol.js';

describe('stats', () => {
  it('takes nearest-rank quantiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(median(xs)).toBe(50);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(summarize([3, 1, 2])).toEqual({ median: 2, p99: 3, samples: 3 });
  });
});

/** A link that loses the datagrams `drop` picks and answers at once. */
function link(drop: (frame: Uint8Array, n: number) => boolean): { io: SenderIo; rx: Receiver } {
  const rx = new Receiver();
  const replies: Uint8Array[] = [];
  let n = 0;
  const io: SenderIo = {
    async sendAll(frames) {
      for (const f of frames) {
        if (drop(f, n++)) continue;
        const reply = rx.take(f.slice());
        if (reply) replies.push(reply);
      }
    },
    async receive() {
      return replies.shift(); // undefined: the acknowledgement timed out
    },
  };
  return { io, rx };
}

const plan: UdpPlan = { size: 64, window: 4, datagrams: 10, rounds: 2, ackTimeoutMs: 1 };

describe('windowed UDP protocol', () => {
  it('delivers every datagram of the measured rounds on a lossless link', async () => {
    const { io, rx } = link(() => false);
    const rounds = await runSender(io, plan);
    expect(rounds.map((r) => [r.sent, r.delivered, r.ackTimeouts])).toEqual([
      [10, 10, 0],
      [10, 10, 0],
    ]);
    expect(rx.finished).toBe(true);
  });

  it('counts only what arrived, and asks again when the window’s last datagram is lost', async () => {
    // Drops every last datagram of a window in the measured rounds (and nothing else).
    const { io, rx } = link((f, n) => n >= 10 && readHeader(f)?.kind === Kind.DATA_ACK);
    const rounds = await runSender(io, plan);
    expect(rounds.map((r) => [r.sent, r.delivered, r.ackTimeouts])).toEqual([
      [10, 7, 3],
      [10, 7, 3],
    ]);
    expect(rx.delivered).toEqual([10, 7, 7]);
  });
});

describe('UDP across a link', () => {
  it('knows how many frames a datagram takes', () => {
    expect(framesPerDatagram(1024, 1500)).toBe(1);
    expect(framesPerDatagram(1472, 1500)).toBe(1); // 1472 + 8 + 20 = 1500
    expect(framesPerDatagram(1473, 1500)).toBe(2);
    expect(framesPerDatagram(8192, 1500)).toBe(6); // 8200 bytes of UDP in 1480-byte fragments
    expect(framesPerDatagram(8192, 9000)).toBe(1);
  });

  it('sums counters over passes and reports every drop counter, zero or not, and any other nonzero one', () => {
    const pass = (lost: number, reassemblyDrops: number) => ({
      sender: { 'wire.lost': lost, 'stack.out.udp': 10, 'stack.drop.arp.queueFull': 0 },
      receiver: { 'stack.frag.lost.limitDatagrams': reassemblyDrops, 'stack.drop.ipv4.checksum': 1, 'stack.frag.lost.overlap': 0 },
    });
    const sum = addCounters(addCounters(undefined, pass(1, 0)), pass(2, 3));
    const r = linkReport({ mtu: 1500, size: 8192 }, sum, 0.5);
    expect(r.framesPerDatagram).toBe(6);
    expect(r.vsOneMachine).toBe(0.5);
    expect(r.drops['sender.wire.lost']).toBe(3);
    expect(r.drops['receiver.stack.frag.lost.limitDatagrams']).toBe(3);
    expect(r.drops['receiver.eth0.rxQueueFull']).toBe(0); // always listed
    expect(r.drops['receiver.stack.drop.ipv4.checksum']).toBe(2); // not in the list, but nonzero
    expect(r.drops).not.toHaveProperty('receiver.stack.frag.lost.overlap'); // neither, and zero
    expect(r.counters['sender.stack.out.udp']).toBe(20);
  });
});

describe('TCP runs', () => {
  const plan: TcpBulkPlan = { bytes: 10_000, writeSize: 4096, warmupBytes: 5000, warmupTransfers: 2, transfers: 2 };

  /** A fake connection that counts what it is given and replies with the count. */
  function counting(lie = 0) {
    const writes: number[][] = [];
    const connect = (i: number): BulkConnection => {
      writes[i] = [];
      return {
        write: (chunk) => void writes[i]!.push(chunk.length),
        finish: () => countReply(writes[i]!.reduce((a, b) => a + b, 0) + lie),
        close: () => undefined,
      };
    };
    return { writes, connect };
  }

  it('writes each transfer in writes of the plan’s size, and marks the warm-up ones apart from the timed ones', async () => {
    const { writes, connect } = counting();
    const results = await runBulkSource(plan, connect);
    expect(writes).toEqual([[4096, 904], [4096, 904], [4096, 4096, 1808], [4096, 4096, 1808]]);
    expect(results.map((r) => [r.bytes, r.warmup])).toEqual([[5000, 0], [5000, 1], [10_000, undefined], [10_000, undefined]]);
    expect(results.every((r) => r.ms >= 0)).toBe(true);
    expect(timed(results).map((r) => r.bytes)).toEqual([10_000, 10_000]);
    expect(freshMachine([...results, ...results]).map((r) => r.warmup)).toEqual([0, 0]);
    expect(bulkConnections(plan)).toBe(4);
  });

  it('reports every transfer’s rate pass by pass, warm-up ones first', () => {
    // Two passes of two transfers: 1 MB in 1 ms is 1,000 MB/s.
    const t = (bytes: number, ms: number) => ({ bytes, ms });
    expect(ratesByPass([t(1e6, 4), t(1e6, 1), t(2e6, 5), t(3e6, 2)], 2)).toEqual([
      [250, 1000],
      [400, 1500],
    ]);
  });

  it('fails a transfer the sink did not read whole', async () => {
    await expect(runBulkSource(plan, counting(-1).connect)).rejects.toThrow(/read 4999 bytes of 5000/);
  });

  it('carries the count in 8 bytes', () => {
    expect(readCount(countReply(32 << 20))).toBe(32 << 20);
    expect(() => readCount(new Uint8Array(4))).toThrow();
  });

  it('makes the warm-up connections, then times the others by blocks', async () => {
    const made: number[] = [];
    const r = await runConnector({ connections: 5, warmup: 2, block: 2 }, (i) => void made.push(i));
    expect(made).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(r.connections).toBe(5);
    expect(r.blockRates).toHaveLength(3); // 2, 2, and the last one alone
    expect(acceptedConnections({ connections: 5, warmup: 2, block: 2 })).toBe(7);
  });

  it('reports the drops and counters of each machine, and the ratios of segments', () => {
    const link = tcpBulkReport(
      plan,
      addCounters(undefined, {
        sender: { 'stack.out.tcp': 270, 'wire.lost': 0, 'stack.drop.tcp.checksum': 0 },
        receiver: { 'stack.out.tcp': 10, 'stack.drop.tcp.noSocket': 2 },
      }),
      { mtu: 1500, vsOneMachine: 0.5 },
    );
    expect(link.derived.segmentsPerAck).toBe(27);
    expect(link.drops['sender.wire.lost']).toBe(0); // always listed
    expect(link.drops['receiver.stack.drop.tcp.noSocket']).toBe(2); // nonzero
    expect(link.drops).not.toHaveProperty('sender.stack.drop.tcp.checksum'); // zero and not listed
    expect(link.counters['sender.stack.out.tcp']).toBe(270);
    expect(link).toMatchObject({ mtu: 1500, vsOneMachine: 0.5, bytes: 10_000, writeSize: 4096 });

    const pass = { machine: { 'stack.out.tcp': 35, 'kernel.leaks': 0 } };
    const c = tcpConnectReport(addCounters(addCounters(undefined, pass), pass), 10, [[1, 2]]);
    expect(c.derived.segmentsPerConnection).toBe(7);
    expect(c.counters['machine.kernel.leaks']).toBe(0);
    expect(c.drops['machine.stack.tx.deviceQueueFull']).toBe(0);
    expect(c.blockRates).toEqual([[1, 2]]);
  });
});

describe('threads started together', () => {
  it('rates all calls over the span from the first start to the last end', () => {
    const spans = [
      { start: 0, end: 1000, calls: 100 },
      { start: 500, end: 2000, calls: 200 },
    ];
    expect(aggregateRate(spans)).toBe(150);
  });

  it('regroups each thread’s trials by trial', () => {
    const s = (start: number) => ({ start, end: start + 1, calls: 1 });
    expect(byTrial([[s(1), s(2)], [s(3), s(4)]])).toEqual([[s(1), s(3)], [s(2), s(4)]]);
  });

  it('rings the bell for a trial only once every thread is ready for it', async () => {
    const bell = newBell();
    const ready: (() => void)[] = [];
    const said = [0, 1].map(() => new Map<number, Promise<void>>());
    const readyFor = (thread: number) => (trial: number) => {
      if (!said[thread]!.has(trial)) said[thread]!.set(trial, new Promise<void>((r) => ready.push(r)));
      return said[thread]!.get(trial)!;
    };
    const conducted = conduct(bell, 1, [readyFor(0), readyFor(1)]);
    await Promise.resolve();
    ready[0]!();
    await new Promise((r) => setTimeout(r, 5));
    expect(Atomics.load(new Int32Array(bell), 0)).toBe(0); // one thread still not ready
    ready[1]!();
    await conducted;
    expect(Atomics.load(new Int32Array(bell), 0)).toBe(1);
    waitForBell(bell, 1); // returns at once: the bell is already there
  });

  it('wakes a thread waiting without blocking when the bell reaches its value', async () => {
    const bell = newBell();
    let woke = false;
    const waiting = bellRung(bell, 2).then(() => (woke = true));
    ring(bell, 1);
    await new Promise((r) => setTimeout(r, 5));
    expect(woke).toBe(false);
    ring(bell, 2);
    await waiting;
    expect(woke).toBe(true);
  });
});

describe('scale figures', () => {
  it('takes each mark’s start-ups from the one after the previous mark', () => {
    const startups = [10, 20, 30, 40, 50, 60, 70, 80];
    expect(startupBracket(startups, [1, 4, 8], 1)).toEqual([10]);
    expect(startupBracket(startups, [1, 4, 8], 4)).toEqual([20, 30, 40]);
    expect(startupBracket(startups, [1, 4, 8], 8)).toEqual([50, 60, 70, 80]);
  });

  it('divides the growth of rss, and of the kernel when both readings have it', () => {
    const reading = (rss: number, heap?: number): MemoryReading => ({ rss, kernels: heap === undefined ? [] : [{ heapUsed: heap, external: 100 }], collected: true });
    expect(growthPer(reading(1000, 500), reading(3000, 1500), 10)).toEqual({ rssBytes: 200, kernelBytes: 100 });
    expect(growthPer(reading(1000), reading(3000, 1500), 10)).toEqual({ rssBytes: 200 });
  });

  it('plans the full run’s scale under the kernel’s limits', () => {
    const s = FULL.scale;
    expect(Math.max(...s.domainMarks)).toBe(64);
    expect(2 * s.pairs).toBeLessThanOrEqual(Math.max(...s.domainMarks));
    // A domain holds at most 1024 handles: a pair's connections and its listener.
    expect(s.connectionsPerPair + 1).toBeLessThanOrEqual(1024);
    expect(s.pairs * s.connectionsPerPair).toBe(10_000);
  });
});

describe('targets', () => {
  const figure = (id: string, ratio: number): Figure => ({
    id,
    figure: id,
    ratio,
    moat: { median: ratio, unit: 'µs', samples: 1 },
    baseline: { name: 'b', median: 1, unit: 'µs', samples: 1 },
  });
  const figures = [figure('null-sync/port-sync', 1.2), figure('null-async/port-async', 1.5), figure('tcp/net', 0.5), figure('null-sync-loaded/null-sync-idle', 12)];

  it('judges each target on its figure’s ratio, in the right direction', () => {
    const t = judgeTargets(figures, FULL);
    expect(t.map((x) => [x.figure, x.met])).toEqual([
      ['null-sync/port-sync', true],
      ['null-async/port-async', false],
      ['tcp/net', true], // at least 0.5x: exactly 0.5 is met
      ['null-sync-loaded/null-sync-idle', false],
    ]);
    expect(t.every((x) => x.caveat === undefined)).toBe(true);
  });

  it('says when a run did not measure under the target’s conditions', () => {
    const loaded = judgeTargets(figures, QUICK).at(-1)!;
    expect(loaded.caveat).toMatch(/100 connections and 3 domains/);
  });
});
