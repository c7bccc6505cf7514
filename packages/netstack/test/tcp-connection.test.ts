import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { quickAckBudget } from '../src/tcp/connection.js';
import { tcpTransitionTable } from '../src/tcp/connection-machine.js';
import { pattern, rstTo, TcpPair, transfer } from './tcp-harness.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('TCP connection', () => {
  it('opens with a three-way handshake that negotiates MSS, window scaling, SACK and timestamps', () => {
    const pair = new TcpPair({ a: { mss: 1460 }, b: { mss: 1200 } });
    pair.establish();
    expect(pair.a.state).toBe('ESTABLISHED');
    expect(pair.b!.state).toBe('ESTABLISHED');
    expect(pair.a.transitions.map((t) => t.to)).toEqual(['SYN_SENT', 'ESTABLISHED']);
    expect(pair.b!.transitions.map((t) => t.to)).toEqual(['LISTEN', 'SYN_RECEIVED', 'ESTABLISHED']);
    expect(pair.a.stats.segmentsOut).toBe(2); // SYN, ACK
    expect(pair.b!.stats.segmentsOut).toBe(1); // SYN-ACK
  });

  it('carries a stream, closes both ways, and leaves the active closer in TIME-WAIT for 2*MSL', () => {
    const pair = new TcpPair({ a: { timeWaitMs: 1000 } });
    const data = pattern(200_000);
    const got = transfer(pair, data);
    expect(sha(got)).toBe(sha(data));
    expect(pair.a.transitions.map((t) => t.to)).toEqual(['SYN_SENT', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'TIME_WAIT']);
    expect(pair.b!.transitions.map((t) => t.to)).toEqual(['LISTEN', 'SYN_RECEIVED', 'ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSED']);
    const at = pair.now;
    pair.run(() => pair.a.closed);
    expect(pair.a.closed).toBe(true);
    expect(pair.now - at).toBeGreaterThanOrEqual(999);
  });

  it.each([1, 2, 3])('moves 16 MiB intact over 5 percent loss, 2 percent duplication, reordering and 1 percent corruption (seed %i)', (seed) => {
    const pair = new TcpPair({ seed, faults: { latencyMs: 5, loss: 0.05, duplicate: 0.02, reorder: 0.03, corrupt: 0.01 } });
    const data = pattern(16 << 20, seed);
    const got = transfer(pair, data);
    expect(got.length).toBe(data.length);
    let first = -1;
    for (let i = 0; i < data.length && first < 0; i++) if (got[i] !== data[i]) first = i;
    expect(first).toBe(-1);
    expect(sha(got)).toBe(sha(data));
    expect(pair.counts.lost).toBeGreaterThan(0);
    expect(pair.counts.checksumDrops).toBeGreaterThan(0);
    expect(pair.a.stats.retransmits).toBeGreaterThan(0);
    expect(pair.a.stats.fastRetransmits).toBeGreaterThan(0);
  });

  it('ACKs the first data segments at once (quick ACKs), so a sender with a large MSS is not held by the delayed-ACK timer', () => {
    const pair = new TcpPair({ a: { mss: 65495 }, b: { mss: 65495 } });
    pair.establish();
    const start = pair.now;
    const data = pattern(512 * 1024);
    let written = pair.a.write(data);
    let got = 0;
    pair.run(() => {
      if (written < data.length) written += pair.a.write(data.subarray(written));
      while (pair.b!.readable > 0) got += pair.b!.read(65536).length;
      return got === data.length;
    });
    expect(got).toBe(data.length);
    // The SYN-ACK's unscaled window (65535) lets one segment go before B's first ACK: delayed, it would cost 40 ms.
    expect(pair.now - start).toBeLessThan(20);
  });

  it('gives quick ACKs for half the receive window in segments, at least 2 and at most 16, as Linux does', () => {
    expect(quickAckBudget(512 * 1024, 65495)).toBe(4);
    expect(quickAckBudget(512 * 1024, 1460)).toBe(16);
    expect(quickAckBudget(4096, 1460)).toBe(2);
  });

  it('is refused by a closed port: the SYN meets a RST and the connection fails with ECONNREFUSED', () => {
    const pair = new TcpPair({ b: null });
    pair.a.open(0);
    pair.run(() => pair.a.closed);
    expect(pair.a.closed).toBe(true);
    expect(pair.a.error).toBe('ECONNREFUSED');
    expect(pair.counts.resetsFromClosedPort).toBe(1);
  });

  it('gives up with ETIMEDOUT when SYNs go unanswered, backing off each time', () => {
    const pair = new TcpPair({ faults: { loss: 1 }, a: { synRetries: 3, initialRtoMs: 1000 } });
    pair.a.open(0);
    pair.run(() => pair.a.closed);
    expect(pair.a.error).toBe('ETIMEDOUT');
    // 1 + 2 + 4 + 8 seconds of backed-off timeouts.
    expect(pair.now).toBeGreaterThanOrEqual(15_000);
    expect(pair.a.stats.timeouts).toBe(3);
  });

  it('opens simultaneously when both sides send SYNs', () => {
    const pair = new TcpPair({ bListens: false });
    pair.a.open(0);
    pair.b!.open(0);
    pair.run(() => pair.a.established && pair.b!.established);
    expect(pair.a.transitions.map((t) => t.to)).toEqual(['SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED']);
    expect(pair.b!.transitions.map((t) => t.to)).toEqual(['SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED']);
  });

  it('closes simultaneously through CLOSING into TIME-WAIT on both sides', () => {
    const pair = new TcpPair();
    pair.establish();
    pair.a.close(pair.now);
    pair.b!.close(pair.now);
    pair.run(() => pair.a.state === 'TIME_WAIT' && pair.b!.state === 'TIME_WAIT');
    expect(pair.a.transitions.map((t) => t.to).slice(-3)).toEqual(['FIN_WAIT_1', 'CLOSING', 'TIME_WAIT']);
    expect(pair.b!.transitions.map((t) => t.to).slice(-3)).toEqual(['FIN_WAIT_1', 'CLOSING', 'TIME_WAIT']);
  });

  it('half-closes: after A shuts its side, B still sends and A still reads', () => {
    const pair = new TcpPair();
    pair.establish();
    pair.a.close(pair.now);
    pair.run(() => pair.b!.atEof);
    expect(pair.b!.state).toBe('CLOSE_WAIT');
    expect(pair.b!.write(new TextEncoder().encode('still here'))).toBe(10);
    pair.run(() => pair.a.readable === 10);
    expect(new TextDecoder().decode(pair.a.read(100))).toBe('still here');
    expect(pair.a.state).toBe('FIN_WAIT_2');
  });

  it('resets on new data after its user closed the socket, where a half-closed one still reads (RFC 1122 4.2.2.13)', () => {
    const pair = new TcpPair();
    pair.establish();
    pair.a.orphan();
    pair.a.close(pair.now);
    pair.run(() => pair.b!.atEof && pair.a.state === 'FIN_WAIT_2');
    // B goes on sending to the closed socket: A answers with RST, and B's connection is reset, not left to probe a full window.
    expect(pair.b!.write(new TextEncoder().encode('anyone there?'))).toBe(13);
    pair.run(() => pair.a.closed && pair.b!.closed);
    expect(pair.a.stats.abortsOnData).toBe(1);
    expect(pair.a.transitions.at(-1)).toMatchObject({ from: 'FIN_WAIT_2', event: 'ABORT', to: 'CLOSED' });
    expect(pair.b!.transitions.at(-1)).toMatchObject({ event: 'RCV_RST', to: 'CLOSED' });
  });

  it('reads into a buffer of the caller as read does: in order, as much as it holds, reopening the window', () => {
    const pair = new TcpPair({ b: { rcvBuf: 16384 } });
    pair.establish();
    const data = pattern(50_000);
    let written = pair.a.write(data);
    const got = new Uint8Array(data.length);
    let read = 0;
    const into = new Uint8Array(3000);
    pair.run(() => {
      if (written < data.length) written += pair.a.write(data.subarray(written));
      const n = pair.b!.readInto(into);
      expect(n).toBeLessThanOrEqual(into.length);
      got.set(into.subarray(0, n), read);
      read += n;
      return read === data.length;
    });
    expect(got).toEqual(data);
    expect(pair.b!.readInto(into)).toBe(0);
  });

  it('resets: an abort sends RST and the peer fails with ECONNRESET', () => {
    const pair = new TcpPair();
    pair.establish();
    pair.b!.write(pattern(5000));
    pair.a.abort(pair.now);
    pair.run(() => pair.b!.closed);
    expect(pair.a.closed).toBe(true);
    expect(pair.b!.closed).toBe(true);
    expect(pair.b!.error).toBe('ECONNRESET');
  });

  it('stops at a zero window, probes it, and resumes when the reader reads', () => {
    const pair = new TcpPair({ b: { rcvBuf: 16384 } });
    pair.establish();
    const data = pattern(100_000);
    let written = pair.a.write(data);
    // B does not read: the window closes and A must probe.
    pair.run(() => pair.a.stats.zeroWindowProbes >= 2, pair.now + 30_000);
    expect(pair.b!.readable).toBe(16384);
    expect(pair.a.stats.zeroWindowProbes).toBeGreaterThanOrEqual(2);
    let got = 0;
    pair.run(() => {
      if (written < data.length) written += pair.a.write(data.subarray(written));
      got += pair.b!.read(1 << 20).length;
      return got === data.length;
    });
    expect(got).toBe(data.length);
  });

  it('times out an idle connection whose peer vanished, when keepalive is on', () => {
    const pair = new TcpPair({ a: { keepAlive: true, keepAliveIdleMs: 1000, keepAliveIntervalMs: 500, keepAliveProbes: 3 } });
    pair.establish();
    pair.b = undefined; // the peer's host is gone: nothing answers, not even a RST
    pair.blackhole = true;
    pair.run(() => pair.a.closed);
    expect(pair.a.error).toBe('ETIMEDOUT');
    expect(pair.a.stats.keepAliveProbes).toBe(3);
  });

  it('answers an in-window RST with a challenge ACK and only an exact one resets (RFC 5961)', () => {
    const pair = new TcpPair();
    pair.establish();
    // B's next sequence number is what A expects; B's own output tells us (its next segment's seq).
    pair.b!.write(new Uint8Array([1]));
    const [probe] = pair.b!.output(pair.now);
    const next = (probe!.header.seq + 1) >>> 0;
    pair.inject('a', probe!);
    pair.run(() => pair.a.readable === 1);
    const rst = (seq: number) => rstTo('a', seq);
    pair.inject('a', rst((next + 100) >>> 0)); // in the window, not exact: a blind attacker's guess
    pair.run(() => pair.a.stats.challengeAcks === 1);
    expect(pair.a.state).toBe('ESTABLISHED');
    pair.inject('a', rst((next + 10_000_000) >>> 0)); // outside: dropped silently
    pair.run(() => false, pair.now + 100);
    expect(pair.a.state).toBe('ESTABLISHED');
    expect(pair.a.stats.challengeAcks).toBe(1);
    pair.inject('a', rst(next)); // exactly RCV.NXT: honoured
    pair.run(() => pair.a.closed);
    expect(pair.a.error).toBe('ECONNRESET');
  });
});

describe('transition coverage of the data path', () => {
  it('drives the connection machine through its transitions from real segments and timers', () => {
    const seen = new Set<string>();
    const note = (...pairs: TcpPair[]) => {
      for (const p of pairs) for (const c of [p.a, p.b]) for (const t of c?.transitions ?? []) seen.add(`${t.from} ${t.event} ${t.to}`);
    };
    const established = () => {
      const p = new TcpPair({ a: { timeWaitMs: 100 }, b: { timeWaitMs: 100 } });
      p.establish();
      return p;
    };
    // Orderly close both ways, and TIME-WAIT's end.
    let p = established();
    p.a.close(p.now);
    p.run(() => p.b!.atEof);
    p.b!.close(p.now);
    p.run(() => p.a.closed && p.b!.closed);
    note(p);
    // Simultaneous open and close.
    p = new TcpPair({ bListens: false, a: { timeWaitMs: 100 }, b: { timeWaitMs: 100 } });
    p.a.open(0);
    p.b!.open(0);
    p.run(() => p.a.established && p.b!.established);
    p.a.close(p.now);
    p.b!.close(p.now);
    p.run(() => p.a.closed && p.b!.closed);
    note(p);
    // Refused, timed out, reset and aborted in several states.
    p = new TcpPair({ b: null });
    p.a.open(0);
    p.run(() => p.a.closed);
    note(p);
    p = new TcpPair({ faults: { loss: 1 }, a: { synRetries: 1 } });
    p.a.open(0);
    p.run(() => p.a.closed);
    note(p);
    for (const abortIn of ['ESTABLISHED', 'CLOSE_WAIT', 'FIN_WAIT_2'] as const) {
      p = established();
      if (abortIn === 'CLOSE_WAIT') {
        p.a.close(p.now);
        p.run(() => p.b!.atEof);
        p.b!.abort(p.now);
      } else if (abortIn === 'FIN_WAIT_2') {
        p.a.close(p.now);
        p.run(() => p.a.state === 'FIN_WAIT_2');
        p.b!.abort(p.now);
      } else p.a.abort(p.now);
      p.run(() => p.a.closed && p.b!.closed);
      note(p);
    }
    // Exact RSTs, aborts and give-ups in the later states.
    const exactRst = (pair: TcpPair) => {
      const seq = pair.a.sequence.rcvNxt;
      pair.inject('a', rstTo('a', seq));
      pair.run(() => pair.a.closed, pair.now + 1000);
    };
    const toState = (target: string, drive: (q: TcpPair) => void) => {
      const q = established();
      drive(q);
      q.run(() => q.a.state === target, q.now + 5000);
      return q;
    };
    for (const [target, drive] of [
      ['ESTABLISHED', () => {}],
      ['FIN_WAIT_2', (q: TcpPair) => q.a.close(q.now)],
      ['CLOSE_WAIT', (q: TcpPair) => q.b!.close(q.now)],
      ['TIME_WAIT', (q: TcpPair) => (q.a.close(q.now), q.b!.close(q.now))],
    ] as const) {
      p = toState(target, drive);
      exactRst(p);
      note(p);
    }
    for (const [target, drive] of [
      ['ESTABLISHED', () => {}],
      ['CLOSE_WAIT', (q: TcpPair) => q.b!.close(q.now)],
    ] as const) {
      p = toState(target, drive);
      p.cut = true;
      p.a.write(new Uint8Array(100));
      if (target === 'CLOSE_WAIT') p.a.close(p.now); // LAST_ACK, FIN never acknowledged
      p.run(() => p.a.closed, p.now + 3_600_000);
      note(p);
    }
    p = new TcpPair();
    p.a.open(0);
    p.a.abort(0);
    note(p);
    // Closing while the SYN is out.
    p = new TcpPair({ faults: { loss: 1 } });
    p.a.open(0);
    p.a.close(0);
    note(p);
    // B half-open (SYN-RECEIVED) when its peer goes quiet: it closes, aborts, or gives up.
    for (const end of ['close', 'abort', 'giveUp', 'rst'] as const) {
      p = new TcpPair({ a: { synRetries: 2 }, b: { synRetries: 2 } });
      p.a.open(0);
      p.run(() => p.b!.state === 'SYN_RECEIVED');
      p.cut = true;
      if (end === 'close') p.b!.close(p.now);
      else if (end === 'abort') p.b!.abort(p.now);
      else if (end === 'rst') {
        p.cut = false;
        p.a.abort(p.now); // A's RST reaches B in SYN-RECEIVED: back to LISTEN (a passive open)
      }
      p.run(() => p.b!.closed || p.b!.state === 'LISTEN' || p.b!.state === 'FIN_WAIT_1', p.now + 600_000);
      note(p);
    }
    // FIN-WAIT-1 whose FIN is never acknowledged: reset, aborted, or given up on.
    for (const end of ['rst', 'abort', 'giveUp'] as const) {
      p = established();
      p.cut = true;
      p.a.close(p.now);
      p.run(() => p.a.state === 'FIN_WAIT_1', p.now + 10);
      if (end === 'rst') {
        p.cut = false;
        p.inject('a', rstTo('a', p.a.sequence.rcvNxt));
      } else if (end === 'abort') p.a.abort(p.now);
      p.run(() => p.a.closed, p.now + 3_600_000);
      note(p);
    }
    // Aborts in FIN-WAIT-2, LAST-ACK and TIME-WAIT.
    p = toState('FIN_WAIT_2', (q) => q.a.close(q.now));
    p.a.abort(p.now);
    note(p);
    /** B in LAST-ACK, its FIN never to be acknowledged (the wire is cut). */
    const lastAck = () => {
      const q = established();
      q.a.close(q.now);
      q.run(() => q.b!.atEof);
      q.cut = true;
      q.b!.close(q.now);
      q.run(() => q.b!.state === 'LAST_ACK', q.now + 10);
      return q;
    };
    p = lastAck();
    p.b!.abort(p.now);
    note(p);
    p = toState('TIME_WAIT', (q) => (q.a.close(q.now), q.b!.close(q.now)));
    p.a.abort(p.now);
    note(p);
    // An exact RST in LAST-ACK.
    p = lastAck();
    p.cut = false;
    p.inject('b', rstTo('b', p.b!.sequence.rcvNxt));
    p.run(() => p.b!.closed, p.now + 1000);
    note(p);
    // Giving up in CLOSE-WAIT (data never acknowledged) and in FIN-WAIT-2 (keepalive unanswered).
    p = toState('CLOSE_WAIT', (q) => q.b!.close(q.now));
    p.cut = true;
    p.a.write(new Uint8Array(100));
    p.run(() => p.a.closed, p.now + 36_000_000);
    note(p);
    p = new TcpPair({ a: { keepAlive: true, keepAliveIdleMs: 1000, keepAliveIntervalMs: 500, keepAliveProbes: 2 } });
    p.establish();
    p.a.close(p.now);
    p.run(() => p.a.state === 'FIN_WAIT_2');
    p.cut = true;
    p.run(() => p.a.closed, p.now + 60_000);
    note(p);
    // CLOSING (simultaneous close) that is reset, aborted, or given up on.
    for (const end of ['rst', 'abort', 'giveUp'] as const) {
      p = established();
      p.a.close(p.now);
      p.b!.close(p.now);
      p.run(() => p.a.state === 'CLOSING', p.now + 10);
      p.cut = true;
      if (end === 'rst') {
        p.a.input(rstTo('a', p.a.sequence.rcvNxt).header, new Uint8Array(0), p.now);
      } else if (end === 'abort') p.a.abort(p.now);
      p.run(() => p.a.closed, p.now + 36_000_000);
      note(p);
    }
    // A RST in SYN-RECEIVED: a passive open goes back to LISTEN, an active one (simultaneous open) closes.
    for (const passive of [true, false]) {
      const q = new TcpPair({ bListens: passive });
      q.a.open(0);
      if (!passive) q.b!.open(0);
      q.run(() => q.b!.state === 'SYN_RECEIVED', 10);
      q.b!.input(rstTo('b', q.b!.sequence.rcvNxt).header, new Uint8Array(0), q.now);
      expect(q.b!.state).toBe(passive ? 'LISTEN' : 'CLOSED');
      note(q);
    }
    // FIN-WAIT-1 meeting a FIN that also acknowledges its own: straight to TIME-WAIT (figure 5, note 2).
    {
      const q = established();
      q.a.close(q.now);
      for (const seg of q.a.output(q.now)) q.b!.input(seg.header, seg.payload, q.now); // A's FIN reaches B...
      q.b!.close(q.now); // ...and B closes before it has acknowledged it
      for (const seg of q.b!.output(q.now)) q.a.input(seg.header, seg.payload, q.now);
      expect(q.a.state).toBe('TIME_WAIT');
      note(q);
    }
    // A fully specified passive OPEN (LISTEN) that is closed, aborted, or turned into an active open.
    for (const end of ['close', 'abort', 'open'] as const) {
      const q = new TcpPair({ bListens: false });
      q.b!.listen(0);
      if (end === 'close') q.b!.close(0);
      else if (end === 'abort') q.b!.abort(0);
      else {
        q.a.listen(0);
        q.b!.open(0); // the figure's SEND from LISTEN: B's SYN reaches the listening A
        q.run(() => q.a.established && q.b!.established, 1000);
        expect(q.a.established && q.b!.established).toBe(true);
      }
      note(q);
    }
    // An in-window SYN in SYN-RECEIVED after a passive open: back to LISTEN (RFC 9293 3.10.7.4, fourth check).
    {
      const q = new TcpPair();
      q.a.open(0);
      q.run(() => q.b!.state === 'SYN_RECEIVED', 10);
      const syn = { ...rstTo('b', q.b!.sequence.rcvNxt).header, flags: 0x02 };
      q.b!.input(syn, new Uint8Array(0), q.now);
      expect(q.b!.state).toBe('LISTEN');
      note(q);
    }
    const table = tcpTransitionTable().map(([from, event, to]) => `${from} ${event} ${to}`);
    const covered = table.filter((t) => seen.has(t));
    const missing = table.filter((t) => !seen.has(t));
    console.info(`TCP transitions exercised by the data path: ${covered.length}/${table.length}${missing.length ? `; not yet: ${missing.join('; ')}` : ''}`);
    expect(missing).toEqual([]);
    expect([...seen].every((t) => table.includes(t))).toBe(true);
  });
});
