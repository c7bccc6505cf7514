/** TCP through two whole stacks joined by an Ethernet wire: ARP, demultiplexing, listeners, RSTs. */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { heapAllocate, SimLinkDirection, Stack, DEFAULT_LINK_FAULTS, type Device, type LinkFaults, type PacketBuffer } from '../src/index.js';
import { pattern } from './tcp-harness.js';

/** One end of an Ethernet wire; with faults, each frame goes through the link model (loss, duplication, corruption...). */
class Wire implements Device {
  readonly medium = 'ethernet';
  readonly mtu = 1500;
  peer!: Wire;
  /** Frames on their way here, in order of arrival time. */
  readonly inbox: { at: number; bytes: Uint8Array }[] = [];
  model: SimLinkDirection | undefined;
  clock: () => number = () => 0;
  transmit(frame: PacketBuffer): boolean {
    const deliveries = this.model ? this.model.send(frame.bytes, this.clock()) : [{ at: this.clock(), bytes: frame.bytes.slice() }];
    for (const d of deliveries) {
      let i = this.peer.inbox.length;
      while (i > 0 && this.peer.inbox[i - 1]!.at > d.at) i--;
      this.peer.inbox.splice(i, 0, d);
    }
    frame.release();
    return true;
  }
  receive(): PacketBuffer | undefined {
    if (!this.inbox.length || this.inbox[0]!.at > this.clock()) return undefined;
    const { bytes } = this.inbox.shift()!;
    return { bytes, release() {} };
  }
  /** When the next frame arrives, if any is on its way. */
  get nextAt(): number | undefined {
    return this.inbox[0]?.at;
  }
}

function twoStacks(faults?: Partial<LinkFaults>, seed = 1) {
  let now = 0;
  const clock = () => now;
  const [wa, wb] = [new Wire(), new Wire()];
  wa.peer = wb;
  wb.peer = wa;
  if (faults) {
    wa.model = new SimLinkDirection({ ...DEFAULT_LINK_FAULTS, ...faults }, seed, 0);
    wb.model = new SimLinkDirection({ ...DEFAULT_LINK_FAULTS, ...faults }, seed + 1000, 0);
  }
  wa.clock = wb.clock = clock;
  const a = new Stack({ now: clock, isnKey: new Uint8Array(16).fill(1) });
  const b = new Stack({ now: clock, isnKey: new Uint8Array(16).fill(2) });
  a.addInterface({ name: 'eth0', device: wa, addr: 0x0a000001, prefixLength: 24, mac: 0x020000000001 });
  b.addInterface({ name: 'eth0', device: wb, addr: 0x0a000002, prefixLength: 24, mac: 0x020000000002 });
  /** Polls both stacks, jumping the clock to the next deadline when idle, until `done()`. */
  const run = (done: () => boolean, limit = 100_000) => {
    for (let i = 0; i < 1_000_000; i++) {
      a.poll(now);
      b.poll(now);
      if (done()) return;
      // What done() wrote goes out on these polls.
      const da = a.poll(now);
      const db = b.poll(now);
      if (done()) return;
      if ((wa.nextAt ?? Infinity) <= now || (wb.nextAt ?? Infinity) <= now) continue;
      const next = [da, db, wa.nextAt, wb.nextAt].filter((t): t is number => t !== undefined).sort((x, y) => x - y)[0];
      if (next === undefined || next > limit) return;
      now = Math.max(now, next);
    }
  };
  return { a, b, run, now: () => now, advance: (ms: number) => void (now += ms) };
}

describe('TCP in the stack', () => {
  it('listens, connects, accepts and carries a stream both ways', () => {
    const { a, b, run } = twoStacks();
    const server = b.tcp.socket(heapAllocate);
    expect(b.tcp.bind(server, { addr: 0, port: 80 })).toBeNull();
    expect(b.tcp.listen(server, 4)).toBeNull();
    const client = a.tcp.socket(heapAllocate);
    expect(a.tcp.connect(client, { addr: 0x0a000002, port: 80 })).toBeNull();
    let accepted: ReturnType<typeof b.tcp.accept>;
    run(() => (accepted ??= b.tcp.accept(server, heapAllocate)) !== undefined && client.conn!.established);
    expect(accepted!.remote).toEqual({ addr: 0x0a000001, port: client.local!.port });
    const data = pattern(300_000);
    let written = 0;
    const got: number[] = [];
    run(() => {
      if (written < data.length) written += client.conn!.write(data.subarray(written));
      const chunk = accepted!.conn!.read(1 << 20);
      for (const x of chunk) got.push(x);
      return got.length === data.length;
    });
    expect(Uint8Array.from(got)).toEqual(data);
    accepted!.conn!.write(new TextEncoder().encode('pong'));
    run(() => client.conn!.readable === 4);
    expect(new TextDecoder().decode(client.conn!.read(10))).toBe('pong');
  });

  it.each([11, 12])('moves 16 MiB intact through both stacks over 5 percent loss, 2 percent duplication, reordering and 1 percent corruption (seed %i)', (seed) => {
    const { a, b, run } = twoStacks({ latencyMs: 2, loss: 0.05, duplicate: 0.02, reorder: 0.03, reorderDelayMs: 3, corrupt: 0.01 }, seed);
    const server = b.tcp.socket(heapAllocate);
    b.tcp.bind(server, { addr: 0, port: 80 });
    b.tcp.listen(server, 4);
    const client = a.tcp.socket(heapAllocate);
    a.tcp.connect(client, { addr: 0x0a000002, port: 80 });
    let accepted: ReturnType<typeof b.tcp.accept>;
    run(() => (accepted ??= b.tcp.accept(server, heapAllocate)) !== undefined && client.conn!.established, 600_000);
    const data = pattern(16 << 20, seed);
    const hash = createHash('sha256');
    let written = 0;
    let got = 0;
    run(() => {
      if (written < data.length) written += client.conn!.write(data.subarray(written, written + (1 << 20)));
      const chunk = accepted!.conn!.read(1 << 20);
      hash.update(chunk);
      got += chunk.length;
      return got === data.length;
    }, 36_000_000);
    expect(got).toBe(data.length);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    // The faults happened, and the stacks dropped the corrupted frames by checksum.
    expect(b.counters.total('drop.') + a.counters.total('drop.')).toBeGreaterThan(0);
    expect(client.conn!.stats.retransmits).toBeGreaterThan(0);
  });

  it('answers a SYN to a closed port with a RST: the connect fails with ECONNREFUSED', () => {
    const { a, b, run } = twoStacks();
    const client = a.tcp.socket(heapAllocate);
    a.tcp.connect(client, { addr: 0x0a000002, port: 81 });
    run(() => client.conn!.closed);
    expect(client.conn!.error).toBe('ECONNREFUSED');
    expect(b.counters.get('drop.tcp.noSocket')).toBe(1);
    expect(b.counters.get('out.tcpRst')).toBe(1);
  });

  it('drops SYNs beyond the backlog, so the client retries instead of being refused', () => {
    const { a, b, run } = twoStacks();
    const server = b.tcp.socket(heapAllocate);
    b.tcp.bind(server, { addr: 0, port: 80 });
    b.tcp.listen(server, 1);
    const clients = [1, 2].map(() => {
      const c = a.tcp.socket(heapAllocate);
      a.tcp.connect(c, { addr: 0x0a000002, port: 80 });
      return c;
    });
    run(() => clients[0]!.conn!.established && b.counters.get('drop.tcp.backlogFull') > 0, 5000);
    expect(b.counters.get('drop.tcp.backlogFull')).toBeGreaterThan(0);
    expect(clients[1]!.conn!.established).toBe(false);
    expect(b.tcp.accept(server, heapAllocate)).toBeDefined();
    run(() => clients[1]!.conn!.established, 60_000);
    expect(clients[1]!.conn!.established).toBe(true);
  });

  it('frees the backlog slot of a handshake reset in SYN-RECEIVED', () => {
    const { a, b, run } = twoStacks();
    const server = b.tcp.socket(heapAllocate);
    b.tcp.bind(server, { addr: 0, port: 80 });
    b.tcp.listen(server, 1);
    const client = a.tcp.socket(heapAllocate);
    a.tcp.connect(client, { addr: 0x0a000002, port: 80 });
    run(() => server.listener!.pending.size === 1); // B answered SYN-ACK and holds the handshake in its backlog
    expect(server.listener!.pending.size).toBe(1);
    a.tcp.close(client, true); // the client gives up: the SYN-ACK meets no connection, and A's RST answers it
    run(() => server.listener!.pending.size === 0, 5000);
    expect(server.listener!.pending.size).toBe(0);
    expect(b.tcp.connections).toBe(0);
  });

  it('refuses to bind a port twice', () => {
    const { b } = twoStacks();
    const s1 = b.tcp.socket(heapAllocate);
    const s2 = b.tcp.socket(heapAllocate);
    expect(b.tcp.bind(s1, { addr: 0, port: 80 })).toBeNull();
    expect(b.tcp.bind(s2, { addr: 0, port: 80 })).toBe('EADDRINUSE');
  });
});

describe('ports and TIME-WAIT', () => {
  it('never hands out an ephemeral port a TIME-WAIT connection still uses; SO_REUSEADDR may bind it', () => {
    const { a, b, run } = twoStacks();
    const server = b.tcp.socket(heapAllocate);
    b.tcp.bind(server, { addr: 0, port: 80 });
    b.tcp.listen(server, 4);
    const first = a.tcp.socket(heapAllocate);
    a.tcp.connect(first, { addr: 0x0a000002, port: 80 });
    let accepted: ReturnType<typeof b.tcp.accept>;
    run(() => (accepted ??= b.tcp.accept(server, heapAllocate)) !== undefined && first.conn!.established);
    const port = first.local!.port;
    // The client closes first, so its side waits in TIME-WAIT.
    a.tcp.close(first, false);
    run(() => accepted!.conn!.atEof);
    b.tcp.close(accepted!, false);
    run(() => first.conn!.state === 'TIME_WAIT');
    expect(first.conn!.state).toBe('TIME_WAIT');
    const second = a.tcp.socket(heapAllocate);
    a.tcp.connect(second, { addr: 0x0a000002, port: 80 });
    expect(second.local!.port).not.toBe(port);
    const again = a.tcp.socket(heapAllocate);
    expect(a.tcp.bind(again, { addr: 0, port })).toBe('EADDRINUSE');
    again.reuseAddr = true;
    expect(a.tcp.bind(again, { addr: 0, port })).toBeNull();
  });
});

describe('a new SYN for a four-tuple in TIME-WAIT', () => {
  it('opens a new connection at once when its sequence number is beyond the old one (RFC 6191)', () => {
    const { a, b, run, now, advance } = twoStacks();
    const server = b.tcp.socket(heapAllocate);
    b.tcp.bind(server, { addr: 0, port: 80 });
    b.tcp.listen(server, 4);
    const connectFrom = (port: number) => {
      const c = a.tcp.socket(heapAllocate);
      expect(a.tcp.bind(c, { addr: 0, port })).toBeNull();
      a.tcp.connect(c, { addr: 0x0a000002, port: 80 });
      let accepted: ReturnType<typeof b.tcp.accept>;
      run(() => (accepted ??= b.tcp.accept(server, heapAllocate)) !== undefined && c.conn!.established);
      return { c, accepted: accepted! };
    };
    const first = connectFrom(41000);
    // The server closes first: its side of 10.0.0.2:80 <-> 10.0.0.1:41000 waits in TIME-WAIT.
    b.tcp.close(first.accepted, false);
    run(() => first.c.conn!.atEof);
    a.tcp.close(first.c, false);
    run(() => first.c.conn!.closed && first.accepted.conn!.state === 'TIME_WAIT');
    advance(10); // initial sequence numbers grow with time (RFC 6528): the new SYN's is beyond the old connection's
    const before = now();
    const second = connectFrom(41000);
    expect(second.c.conn!.established).toBe(true);
    expect(now() - before).toBeLessThan(100); // no retransmission timeout on the way
    expect(b.counters.get('tcp.timeWaitReopened')).toBe(1);
  });
});
