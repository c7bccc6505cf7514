import { describe, expect, it } from 'vitest';
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
