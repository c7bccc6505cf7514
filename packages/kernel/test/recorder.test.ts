/** The event recorder: its bound, and what the kernel records of calls, connections, frames and domains. */
import { describe, expect, it } from 'vitest';
import { AF_INET, encodeRequest, Errno, SOCK_DGRAM, SOCK_STREAM } from '@moat/abi';
import { emitArp, emitEthernetHeader, ARP_REQUEST, ETHERTYPE_ARP, MAC_BROADCAST, parseIpv4Address } from '@moat/netstack';
import { Recorder, summarizeFrame, type RecordedEvent } from '../src/index.js';
import { kernelWithDomains, type TestDomain } from './harness.js';

const lo = (port: number) => ({ addr: '127.0.0.1', port });
const turn = () => new Promise((resolve) => setImmediate(resolve));

async function socket(d: TestDomain, type: number): Promise<number> {
  const [errno, h] = await d.call('socket', AF_INET, type, 0);
  expect(errno).toBe(0);
  return h;
}

/** Waits (in real time) until `ready` holds. */
async function until(ready: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const syscalls = (events: RecordedEvent[], track: string) =>
  events.filter((e) => e.kind === 'syscall' && e.track === track).map((e) => [e.name, e.args?.result, e.args?.handle]);

describe('the recorder', () => {
  it('keeps at most its capacity, counts the rest as dropped, and holds back 1% for lifecycle events', () => {
    const r = new Recorder({ capacity: 200, now: () => 0 });
    for (let i = 0; i < 250; i++) r.syscall('a', 'null', 0, 0, 0, NaN);
    expect([r.length, r.dropped]).toEqual([198, 52]);
    for (let i = 0; i < 3; i++) r.lifecycle('a', 'oops', { reason: `${i}` });
    expect([r.length, r.dropped]).toEqual([200, 53]);
    // Its columns never grew past the bound.
    expect((r as unknown as { ts: Float64Array }).ts.length).toBeLessThanOrEqual(200);
    const events = r.events();
    expect(events).toHaveLength(200);
    expect(events.slice(-2).map((e) => e.args?.reason)).toEqual(['0', '1']);
  });

  it('records nothing with capacity 0, and refuses a nonsensical one', () => {
    const r = new Recorder({ capacity: 0, now: () => 0 });
    r.lifecycle('a', 'attach');
    r.syscall('a', 'null', 0, 0, 0, NaN);
    expect([r.length, r.dropped]).toEqual([0, 2]);
    expect(() => new Recorder({ capacity: -1, now: () => 0 })).toThrow(/capacity/);
  });

  it('summarizes frames as tcpdump would', () => {
    const arp = new Uint8Array(60);
    emitEthernetHeader({ dst: MAC_BROADCAST, src: 0x020000000001, ethertype: ETHERTYPE_ARP }, 28, arp);
    emitArp({ opcode: ARP_REQUEST, senderMac: 0x020000000001, senderIp: parseIpv4Address('10.0.0.1'), targetMac: 0, targetIp: parseIpv4Address('10.0.0.2') }, arp, 14);
    expect(summarizeFrame(arp, true)).toEqual({ name: 'arp who-has 10.0.0.2 tell 10.0.0.1', args: { proto: 'arp' } });
    expect(summarizeFrame(new Uint8Array(5), true).name).toBe('runt frame');
    expect(summarizeFrame(new Uint8Array(30), false).name).toBe('not ipv4');
  });
});

describe('what the kernel records', () => {
  it('records nothing unless asked', async () => {
    const { kernel, attach } = kernelWithDomains();
    await attach('a').call('null');
    expect(kernel.recorder).toBeUndefined();
    expect(kernel.timeline()).toEqual({ events: [], dropped: 0 });
  });

  it('records each served call with its result, the handle it named, and how long the kernel held it', async () => {
    let clock = 1000;
    const { kernel, attach } = kernelWithDomains({ trace: true, now: () => clock });
    const a = attach('a');
    const b = attach('b');
    const s = await socket(a, SOCK_DGRAM);
    expect((await a.call('bind', s, lo(7000)))[0]).toBe(0);
    const receiving = a.call('recvfrom', s, 100, 0);
    await turn();
    await turn();
    clock += 5; // the call waits 5 ms (kernel clock) for a datagram
    const t = await socket(b, SOCK_DGRAM);
    expect((await b.call('sendto', t, new Uint8Array([1, 2, 3]), 0, lo(7000)))[0]).toBe(0);
    expect((await receiving)[0]).toBe(0);
    expect((await a.call('close', 4242))[0]).toBe(Errno.EBADF);
    expect((await a.call('close', 'forged'))[0]).toBe(Errno.EBADF);
    expect((await a.call('bind', s, { addr: 'nowhere', port: 1 }))[0]).toBe(Errno.EINVAL);
    expect((await a.raw(new Uint8Array([1, 2, 3])))[1]).toBe(Errno.EINVAL);
    expect((await a.raw(encodeRequest(99, 250, [])))[1]).toBe(Errno.ENOSYS);
    kernel.detach('a', 'test over');

    const { events, dropped } = kernel.timeline();
    expect(dropped).toBe(0);
    expect(syscalls(events, 'a')).toEqual([
      ['socket', 'OK', s],
      ['bind', 'OK', s],
      ['recvfrom', 'OK', s],
      ['close', 'EBADF', 4242],
      ['close', 'EBADF', undefined],
      ['bind', 'EINVAL', s],
      ['(malformed)', 'EINVAL', undefined],
      ['(unknown syscall)', 'ENOSYS', undefined],
    ]);
    expect(syscalls(events, 'b')).toEqual([
      ['socket', 'OK', t],
      ['sendto', 'OK', t],
    ]);
    // Times are microseconds since the recorder started; a parked call lasts until its reply.
    const recv = events.find((e) => e.name === 'recvfrom')!;
    expect([recv.ts, recv.dur]).toEqual([0, 5000]);
    for (const e of events.filter((x) => x.kind === 'syscall' && x.name !== 'recvfrom')) expect(e.dur).toBe(0);
    // No payloads: args hold the result and the handle, nothing else.
    for (const e of events.filter((x) => x.kind === 'syscall')) expect(Object.keys(e.args!).every((k) => k === 'result' || k === 'handle')).toBe(true);
    const lifecycle = events.filter((e) => e.kind === 'lifecycle').map((e) => [e.track, e.name, e.args]);
    expect(lifecycle).toEqual([
      ['a', 'attach', undefined],
      ['b', 'attach', undefined],
      ['a', 'detach', { reason: 'test over', unanswered: 0 }],
    ]);
  });

  it('records a domain reported for malformed frames, and what a detach left unanswered', async () => {
    const oopses: string[] = [];
    const { kernel, attach } = kernelWithDomains({ trace: true, malformedLimit: 2, onOops: (d) => oopses.push(d) });
    const a = attach('a');
    await a.raw('not bytes');
    await a.raw(new Uint8Array([0xc1]));
    const s = await socket(a, SOCK_DGRAM);
    await a.call('bind', s, lo(7100));
    void a.call('recvfrom', s, 10, 0);
    await turn();
    await turn();
    kernel.detach('a', 'killed');
    expect(oopses).toEqual(['a']);
    const lifecycle = kernel
      .timeline()
      .events.filter((e) => e.kind === 'lifecycle')
      .map((e) => [e.name, e.args]);
    expect(lifecycle).toEqual([
      ['attach', undefined],
      ['oops', { reason: expect.stringMatching(/^2 malformed frames \(last: /) }],
      ['detach', { reason: 'killed', unanswered: 1 }],
    ]);
  });

  it('stops at its bound: later calls are only counted', async () => {
    const { kernel, attach } = kernelWithDomains({ trace: true, traceEvents: 20 });
    const a = attach('a');
    for (let i = 0; i < 30; i++) await a.call('null');
    const { events, dropped } = kernel.timeline();
    // The attach, then 19 of the 30 calls.
    expect(events).toHaveLength(20);
    expect(dropped).toBe(11);
  });

  it("records every control transition of a loopback TCP connection's two ends, as each connection took them", async () => {
    const { kernel, attach } = kernelWithDomains({ trace: true, machineName: 'box' });
    const server = attach('server');
    const client = attach('client');
    const l = await socket(server, SOCK_STREAM);
    await server.call('bind', l, lo(8080));
    await server.call('listen', l, 4);
    const c = await socket(client, SOCK_STREAM);
    const accepting = server.call('accept', l);
    expect((await client.call('connect', c, lo(8080)))[0]).toBe(0);
    const [, [conn]] = await accepting;
    const [, [, port]] = await client.call('getsockname', c);
    // Both connection objects, before their sockets close and the handles go.
    const connOf = (d: string, h: number) => [...kernel.domain(d)!.table.entries()].find(([handle]) => handle === h)![1].object.stream!.conn!;
    const clientConn = connOf('client', c);
    const serverConn = connOf('server', conn);
    await client.call('close', c);
    expect((await server.call('recvfrom', conn, 10, 0))[1][0]).toHaveLength(0);
    await server.call('close', conn);
    await until(() => serverConn.state === 'CLOSED' && clientConn.state === 'TIME_WAIT');

    const transitions = kernel.timeline().events.filter((e) => e.kind === 'transition');
    const of = (tuple: string) => transitions.filter((e) => e.args?.conn === tuple);
    const clientSide = of(`127.0.0.1:${port} > 127.0.0.1:8080`);
    const serverSide = of(`127.0.0.1:8080 > 127.0.0.1:${port}`);
    expect(clientSide.length + serverSide.length).toBe(transitions.length);
    for (const e of transitions) expect(e.track).toBe('kernel:box');
    expect(clientSide.map((e) => [e.name, e.args?.event])).toEqual(clientConn.transitions.map((t) => [`${t.from} -> ${t.to}`, t.event]));
    expect(serverSide.map((e) => [e.name, e.args?.event])).toEqual(serverConn.transitions.map((t) => [`${t.from} -> ${t.to}`, t.event]));
    expect(clientSide.map((e) => e.name)).toEqual(['CLOSED -> SYN_SENT', 'SYN_SENT -> ESTABLISHED', 'ESTABLISHED -> FIN_WAIT_1', 'FIN_WAIT_1 -> FIN_WAIT_2', 'FIN_WAIT_2 -> TIME_WAIT']);
    expect(serverSide.at(-1)!.name).toBe('LAST_ACK -> CLOSED');
    // Instants, in time order.
    for (let i = 1; i < transitions.length; i++) expect(transitions[i]!.ts).toBeGreaterThanOrEqual(transitions[i - 1]!.ts);
    expect(transitions.every((e) => e.dur === undefined)).toBe(true);
  });

  it('records frames on loopback only with tracePackets, once each, summarized', async () => {
    for (const tracePackets of [false, true]) {
      const { kernel, attach } = kernelWithDomains({ trace: true, tracePackets });
      const a = attach('a');
      const r = await socket(a, SOCK_DGRAM);
      await a.call('bind', r, lo(7200));
      const s = await socket(a, SOCK_DGRAM);
      await a.call('bind', s, lo(7201));
      await a.call('sendto', s, new Uint8Array(10), 0, lo(7200));
      expect((await a.call('recvfrom', r, 100, 0))[0]).toBe(0);
      const packets = kernel.timeline().events.filter((e) => e.kind === 'packet');
      if (!tracePackets) {
        expect(packets).toEqual([]);
        continue;
      }
      expect(packets.map((e) => [e.track, e.name, e.args])).toEqual([
        ['kernel:machine', 'udp 127.0.0.1:7201 > 127.0.0.1:7200', { iface: 'lo', dir: 'lo', bytes: 38, proto: 'udp', payload: 10 }],
      ]);
    }
  });
});
