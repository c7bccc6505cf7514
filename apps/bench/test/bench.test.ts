import { describe, expect, it } from 'vitest';
import { addCounters, framesPerDatagram, linkReport } from '../src/figures.js';
import { median, quantile, summarize } from '../src/stats.js';
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
