/** Two machines, each with its own kernel worker, joined by a simulated Ethernet link. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Errno } from '@moat/abi';
import { parsePcap, PCAP_LINKTYPE_ETHERNET } from '@moat/netstack';
import { Network } from '@moat/sim';

const program = (name: string) => new URL(`./fixtures/programs/${name}.mjs`, import.meta.url);
const hasTshark = (() => {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let net: Network | undefined;
let dir: string | undefined;
afterEach(async () => {
  await net?.shutdown();
  net = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function twoMachines(faults = {}) {
  dir = mkdtempSync(join(tmpdir(), 'moat-net-'));
  net = new Network(11);
  const a = net.machine({ name: 'a', interfaces: [{ name: 'eth0', addr: '10.0.0.1/24', mac: '02:00:00:00:00:01' }], captureDir: dir });
  const b = net.machine({ name: 'b', interfaces: [{ name: 'eth0', addr: '10.0.0.2/24', mac: '02:00:00:00:00:02' }], captureDir: dir });
  await net.link({ machine: a, iface: 'eth0' }, { machine: b, iface: 'eth0' }, faults);
  return { a, b };
}

describe('two machines on a link', () => {
  it('resolve each other by ARP, ping, fragment and reassemble, refuse by ICMP, and capture it all in pcap', async () => {
    const { a, b } = await twoMachines({ latencyMs: 1 });
    const server = await b.spawn({ name: 'echo', program: program('udp-echo'), args: { port: 7 } });
    await server.waitForLog(/listening/);
    const client = await a.spawn({ name: 'client', program: program('net-client'), args: { server: '10.0.0.2', port: 7, closedPort: 9 } });
    const out = await client.outcome;
    expect(out.status, out.error).toBe('returned');
    const v = out.value as any;
    expect(v.rtts.map((r: any) => [r.seq, r.type, r.from])).toEqual([[1, 0, '10.0.0.2'], [2, 0, '10.0.0.2'], [3, 0, '10.0.0.2']]);
    for (const r of v.rtts) expect(r.ms).toBeGreaterThanOrEqual(2); // 1 ms each way
    expect(v.echoes).toEqual([1, 1472, 1473, 8192, 65507].map((size) => ({ size, intact: true })));
    expect(v.dfBig).toBe(Errno.EMSGSIZE);
    expect(v.dfFits).toBe(0);
    expect(v.refusedErr).toBe(Errno.ECONNREFUSED);
    expect(((await server.outcome).value as any).echoed).toBe(5);

    const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
    expect(sa.stack['out.arpRequest']).toBeGreaterThanOrEqual(1);
    expect(sb.stack['out.arpReply']).toBeGreaterThanOrEqual(1);
    expect(sa.stack['out.fragmented']).toBeGreaterThanOrEqual(3);
    expect(sb.stack['frag.reassembled']).toBeGreaterThanOrEqual(3);
    expect(sb.stack['out.icmpError']).toBeGreaterThanOrEqual(1);
    expect(sb.stack['out.icmpEchoReply']).toBe(3);
    for (const s of [sa, sb]) {
      expect(s.internalErrors).toBe(0);
      expect(s.leaks).toEqual([]);
      expect(s.pool.inUseBuffers).toBe(0);
    }
    const capture = sa.interfaces[0]!.capture!;
    const pcap = parsePcap(new Uint8Array(readFileSync(capture.path)));
    expect(pcap.linktype).toBe(PCAP_LINKTYPE_ETHERNET);
    expect(pcap.records.length).toBe(capture.records);
    expect(pcap.records.length).toBeGreaterThan(50);
    if (hasTshark) {
      await net!.shutdown(); // flushes and closes the capture files
      net = undefined;
      const fields = execFileSync('tshark', ['-r', capture.path, '-T', 'fields', '-e', 'frame.protocols'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(fields).toContain('eth:ethertype:arp');
      expect(fields).toContain('eth:ethertype:ip:icmp:data');
      expect(fields).toContain('eth:ethertype:ip:udp:data');
      const expert = execFileSync('tshark', ['-r', capture.path, '-z', 'expert,error', '-q'], { encoding: 'utf8' });
      expect(expert).not.toMatch(/Malformed|checksum.*bad/i);
    }
  });

  it('loses, duplicates, corrupts and delays frames as configured, and counts it', async () => {
    const { a, b } = await twoMachines({ loss: 0.2, duplicate: 0.1, corrupt: 0.05 });
    const server = await b.spawn({ name: 'echo', program: program('udp-echo'), args: { port: 7 } });
    await server.waitForLog(/listening/);
    const flood = await a.spawn({ name: 'flood', program: program('flood'), args: { to: '10.0.0.2', port: 7, count: 400 } });
    const out = await flood.outcome;
    expect(out.status, out.error).toBe('returned');
    // A send returns once its frame is queued on the interface; the wire takes the queue at the kernel's next poll.
    let wire = (await a.stats()).interfaces[0]!.wire!;
    for (let i = 0; i < 100 && wire.offered < 400; i++) wire = (await a.stats()).interfaces[0]!.wire!;
    expect(wire.offered).toBeGreaterThanOrEqual(400);
    expect(wire.lost / wire.offered).toBeGreaterThan(0.1);
    expect(wire.lost / wire.offered).toBeLessThan(0.3);
    expect(wire.duplicated).toBeGreaterThan(0);
    expect(wire.corrupted).toBeGreaterThan(0);
    const sb = await b.stats();
    // Corrupted frames are dropped by checksum, never delivered.
    expect((sb.stack['drop.udp.checksum'] ?? 0) + (sb.stack['drop.ipv4.checksum'] ?? 0) + (sb.stack['drop.ethernet.notForUs'] ?? 0) + (sb.stack['drop.ethernet.ethertype'] ?? 0) + (sb.stack['drop.arp.notForUs'] ?? 0)).toBeGreaterThan(0);
    expect(sb.internalErrors).toBe(0);
  });

  it.skipIf(!hasTshark)('speaks TCP that Wireshark finds nothing wrong with on a clean link', async () => {
    const { a, b } = await twoMachines({ latencyMs: 1 });
    const server = await b.spawn({ name: 'server', program: program('tcp-server'), args: { port: 5001 } });
    await server.waitForLog(/listening/);
    const client = await a.spawn({ name: 'client', program: program('tcp-client'), args: { server: '10.0.0.2', port: 5001, bytes: 300_000 } });
    expect((await client.outcome).value).toMatchObject({ intact: true, eof: true });
    await server.outcome;
    const path = (await a.stats()).interfaces[0]!.capture!.path;
    await net!.shutdown();
    net = undefined;
    const tshark = (...args: string[]) => execFileSync('tshark', ['-r', path, '-o', 'tcp.check_checksum:TRUE', ...args], { encoding: 'utf8' });
    const segments = tshark('-Y', 'tcp', '-T', 'fields', '-e', 'tcp.flags.str').trim().split('\n');
    expect(segments.length).toBeGreaterThan(200);
    expect(segments[0]).toMatch(/S/); // the SYN opens the capture
    // No bad checksum, no retransmission, duplicate ACK, out-of-order or zero window on a clean link.
    const flagged = tshark('-Y', 'tcp.checksum.status == 2 || tcp.analysis.retransmission || tcp.analysis.duplicate_ack || tcp.analysis.out_of_order || tcp.analysis.zero_window || _ws.malformed');
    expect(flagged.trim()).toBe('');
    const options = tshark('-Y', 'tcp.flags.syn == 1', '-T', 'fields', '-e', 'tcp.options.mss_val', '-e', 'tcp.options.wscale.shift', '-e', 'tcp.options.sack_perm', '-e', 'tcp.options.timestamp.tsval');
    for (const line of options.trim().split('\n')) expect(line.split('\t').every((f) => f !== '')).toBe(true);
  });

  it.skipIf(!hasTshark)("captures loopback TCP whole, gathered packets included: Wireshark reads every byte the client sent", async () => {
    dir = mkdtempSync(join(tmpdir(), 'moat-net-'));
    net = new Network(11);
    const m = net.machine({ name: 'm', captureDir: dir });
    const server = await m.spawn({ name: 'server', program: program('tcp-server'), args: { port: 5001 } });
    await server.waitForLog(/listening/);
    const bytes = 300_000;
    const client = await m.spawn({ name: 'client', program: program('tcp-client'), args: { server: '127.0.0.1', port: 5001, bytes } });
    expect((await client.outcome).value).toMatchObject({ intact: true, eof: true });
    await server.outcome;
    await net.shutdown();
    net = undefined;
    // Loopback hands a data segment over as a view of the send buffer (Device.gather): the capture must still show it whole.
    const payloads = execFileSync('tshark', ['-r', join(dir, 'm-lo.pcap'), '-Y', 'tcp.dstport == 5001 && tcp.len > 0', '-T', 'fields', '-e', 'tcp.payload'], { encoding: 'utf8' });
    const seen = Buffer.concat(payloads.trim().split('\n').map((h) => Buffer.from(h.replace(/:/g, ''), 'hex')));
    const sent = Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 2654435761) >>> 24)); // tcp-client's pattern
    expect(seen.length).toBe(bytes);
    expect(seen.equals(sent)).toBe(true);
  });

  it('partitions the link at the chosen time and heals it', async () => {
    const { a } = await twoMachines({ latencyMs: 1, partitions: [{ fromMs: 1000, toMs: 1400 }] });
    const pinger = await a.spawn({ name: 'pinger', program: program('pinger'), args: { to: '10.0.0.2', count: 50, waitMs: 40 } });
    const out = await pinger.outcome;
    expect(out.status, out.error).toBe('returned');
    const answered: boolean[] = (out.value as any).answered;
    // Answered, then a run of silence while partitioned, then answered again.
    const firstLost = answered.indexOf(false);
    const lastLost = answered.lastIndexOf(false);
    expect(firstLost).toBeGreaterThan(0);
    expect(lastLost).toBeLessThan(answered.length - 1);
    expect(answered.slice(firstLost, lastLost + 1).filter(Boolean).length).toBeLessThanOrEqual(1);
    const wire = (await a.stats()).interfaces[0]!.wire!;
    expect(wire.partitionDrops).toBeGreaterThan(0);
  });

  it('joins two machines by Ethernet frames carried in real UDP datagrams', async () => {
    net = new Network(3);
    const a = net.machine({ name: 'a', interfaces: [{ name: 'eth0', addr: '10.1.0.1/24', mac: '02:00:00:00:01:01' }] });
    const b = net.machine({ name: 'b', interfaces: [{ name: 'eth0', addr: '10.1.0.2/24', mac: '02:00:00:00:01:02' }] });
    const [pa, pb] = [47101, 47102];
    await a.wire('eth0', { kind: 'udp', local: { addr: '127.0.0.1', port: pa }, peer: { addr: '127.0.0.1', port: pb } });
    await b.wire('eth0', { kind: 'udp', local: { addr: '127.0.0.1', port: pb }, peer: { addr: '127.0.0.1', port: pa } });
    const server = await b.spawn({ name: 'echo', program: program('udp-echo'), args: { port: 7 } });
    await server.waitForLog(/listening/);
    const client = await a.spawn({ name: 'client', program: program('net-client'), args: { server: '10.1.0.2', port: 7, closedPort: 9 } });
    const out = await client.outcome;
    expect(out.status, out.error).toBe('returned');
    expect((out.value as any).echoes.every((e: any) => e.intact)).toBe(true);
    const wire = (await a.stats()).interfaces[0]!.wire!;
    expect(wire.sent).toBeGreaterThan(40);
    expect(wire.received).toBeGreaterThan(40);
    expect(wire.foreign).toBe(0);
  });

  it('refuses a link whose faults are out of range, naming the field', async () => {
    net = new Network(1);
    const a = net.machine({ name: 'a', interfaces: [{ name: 'eth0', addr: '10.0.0.1/24', mac: '02:00:00:00:00:01' }] });
    const b = net.machine({ name: 'b', interfaces: [{ name: 'eth0', addr: '10.0.0.2/24', mac: '02:00:00:00:00:02' }] });
    await expect(net.link({ machine: a, iface: 'eth0' }, { machine: b, iface: 'eth0' }, { loss: 1.5 })).rejects.toThrow(/loss must be between 0 and 1, got 1.5/);
  });
});
