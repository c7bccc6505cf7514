/**
 * The hostile third-party library. Started by the OTA when its download
 * begins, it tries, in order: binding the OTA's port
 * on every local address; flooding the OTA's port with forged chunks; using its
 * own handle after close; every handle number from -10 to 4096 (and handles
 * that are not integers) on send, recv and close; malformed frames of every
 * kind; opening sockets until refused; and finally it throws while holding
 * sockets and buffers. Each attempt's result is tallied; a breach is a
 * success where isolation demands a refusal.
 */
import { decodeFrame, encodeRequest, SYS } from '@moat/abi/core';
import { AF_INET, errnoName, errnoOf, MSG_DONTWAIT, SOCK_DGRAM, SOCK_STREAM, type DomainContext, type SockAddr } from '@moat/libc';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { attempt, record, type Attempt } from './library-kit.js';
import { encodeChunk } from './protocol.js';

export interface ThirdPartyArgs {
  /** Where it waits to be started by the OTA (its host app). */
  port: number;
  otaPort: number;
  /** The machine's own addresses, each tried when binding the OTA's port. */
  localAddrs: string[];
  /** The OTA's transport: its port is tried with sockets of that kind. */
  transport: 'udp' | 'tcp';
  /** With TCP: the update server the OTA is connected to, whose four-tuple the attacker tries to take. */
  server?: SockAddr;
  seed: number;
  /** Forged datagrams sent at the OTA's port. */
  floodDatagrams: number;
  /** Throw at the end (the scenario's crash); false lets it return. */
  crash: boolean;
}

export default async function thirdParty({ sys, channel, args, log, publish }: DomainContext<ThirdPartyArgs>) {
  const attempts: Attempt[] = [];
  /** `successIsBreach`: the call must be refused, so an OK result is a breach. */
  const tally = (a: Attempt, errno: number, successIsBreach: boolean) =>
    record(a, errno === 0 ? 'OK' : errnoName(errno), successIsBreach && errno === 0);
  const target: SockAddr = { addr: '127.0.0.1', port: args.otaPort };
  const payload = new Uint8Array(64).fill(0x41);

  // Loaded; it starts when the OTA starts it, and tells the OTA when its start-up (the
  // attacks that need the OTA alive: 1 and 2) is over. It keeps no socket open meanwhile.
  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(control, { addr: '127.0.0.1', port: args.port });
  log('loaded');
  const { from: app } = sys.recvfrom(control, 16);

  // 1. The OTA's port, on every address of the machine (while the OTA holds it: this runs first).
  const kind = args.transport === 'tcp' ? SOCK_STREAM : SOCK_DGRAM;
  const hijack = attempt(attempts, 'bind the OTA port', `${args.transport} port ${args.otaPort} on ${['0.0.0.0', ...args.localAddrs].join(', ')}`);
  for (const addr of ['0.0.0.0', ...args.localAddrs]) {
    const s = sys.socket(AF_INET, kind);
    tally(hijack, errnoOf(() => sys.bind(s, { addr, port: args.otaPort })), true);
    sys.close(s);
  }
  if (args.transport === 'tcp' && args.server) {
    // The OTA's connection: the same four-tuple cannot be had, and the OTA listens for nobody.
    const tuple = attempt(attempts, "take the OTA's connection", `connect from port ${args.otaPort} to ${args.server.addr}:${args.server.port}, and connect to the OTA's port`);
    const s = sys.socket(AF_INET, SOCK_STREAM);
    const bound = errnoOf(() => sys.bind(s, { addr: args.localAddrs.at(-1)!, port: args.otaPort }));
    tally(tuple, bound === 0 ? errnoOf(() => sys.connect(s, args.server!)) : bound, true);
    sys.close(s);
    const t = sys.socket(AF_INET, SOCK_STREAM);
    tally(tuple, errnoOf(() => sys.connect(t, { addr: args.localAddrs.at(-1)!, port: args.otaPort })), true);
    sys.close(t);
    // No raw sockets: a forged RST for the OTA's connection can only travel as the payload of its own datagrams.
    const inject = attempt(attempts, 'inject TCP segments', "forged RSTs for the OTA's connection, sent as UDP payload to the OTA's port");
    const rst = new Uint8Array(20);
    rst[0] = args.server.port >> 8;
    rst[1] = args.server.port & 0xff;
    rst[2] = args.otaPort >> 8;
    rst[3] = args.otaPort & 0xff;
    rst[12] = 5 << 4;
    rst[13] = 0x04; // RST
    const u = sys.socket(AF_INET, SOCK_DGRAM);
    for (let seq = 0; seq < 64; seq++) {
      new DataView(rst.buffer).setUint32(4, (seq * 0x04000000) >>> 0); // sweep the sequence space
      tally(inject, errnoOf(() => sys.sendto(u, rst, { addr: args.localAddrs.at(-1)!, port: args.otaPort })), false);
    }
    sys.close(u);
  }

  // 2. Forged chunks at the OTA's port during its download: sent, but never delivered to the OTA.
  const flood = attempt(attempts, 'forged chunks to the OTA port', 'UDP send succeeds; the OTA socket is connected to the server and never receives them');
  const forgedChunk = encodeChunk(0, new Uint8Array(8192).fill(0xee));
  const sender = sys.socket(AF_INET, SOCK_DGRAM);
  for (let i = 0; i < args.floodDatagrams; i++) tally(flood, errnoOf(() => sys.sendto(sender, forgedChunk, target)), false);
  sys.close(sender);
  sys.sendto(control, new Uint8Array([1]), app);
  sys.close(control);

  // 3. A handle of its own after close: stale, so refused, and never the object that reuses the slot.
  const stale = attempt(attempts, 'use after close', 'the closed handle, with a new socket in the same slot');
  const reused = sys.socket(AF_INET, SOCK_DGRAM);
  tally(stale, errnoOf(() => sys.sendto(sender, payload, target)), true);
  tally(stale, errnoOf(() => sys.close(sender)), true);
  sys.close(reused);

  // 4. Handles it was never given: nothing of its own is open now, so every success is a breach.
  const forged: unknown[] = [];
  for (let h = -10; h <= 4096; h++) forged.push(h);
  forged.push(1.5, 1024.25, -0, 2 ** 53, Number.MAX_SAFE_INTEGER, NaN, Infinity, '1024', null, true, [1024], { h: 1024 });
  const send = attempt(attempts, 'sendto on forged handles', 'handles -10..4096 and non-integers');
  const recv = attempt(attempts, 'recv on forged handles', 'handles -10..4096 and non-integers');
  const close = attempt(attempts, 'close on forged handles', 'handles -10..4096 and non-integers');
  for (const h of forged) {
    tally(send, errnoOf(() => sys.sendto(h as number, payload, target)), true);
    tally(recv, errnoOf(() => sys.recv(h as number, 100, MSG_DONTWAIT)), true);
    tally(close, errnoOf(() => sys.close(h as number)), true);
  }
  const forgedSucceeded = send.outcomes.OK ?? 0;
  if (forgedSucceeded > 0) log(`BREACH: ${forgedSucceeded} sends on forged handles succeeded`);

  // 5. Malformed frames, straight onto its channel.
  const rng = xoroshiro128plus(args.seed);
  const randomBytes = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = rng.next() & 0xff;
    return b;
  };
  // Random bytes: almost all garbage, but a few may by chance spell a valid call on its own
  // resources, which the kernel rightly serves; what matters is that it answers every one.
  const random = attempt(attempts, 'random frames', 'seeded random bytes; one that happens to be a valid call is served');
  for (let i = 0; i < 200; i++) {
    const [, errno] = channel.rawSync(randomBytes(1 + ((rng.next() >>> 0) % 64)));
    tally(random, errno, false);
  }
  const malformed = attempt(attempts, 'malformed frames', 'truncated frames, wrong shapes, bad ids, unknown calls, wrong argument types, oversize, non-byte messages');
  const frames: [unknown, number][] = [];
  const valid = encodeRequest(77, SYS.sendto, [1024, payload, 0, target]);
  for (let cut = 1; cut < valid.length; cut += 7) frames.push([valid.subarray(0, cut), 0]);
  frames.push(
    [encodeRequest(78, 9999, []), 78], // no such syscall
    [encodeRequest(79, SYS.socket, ['AF_INET', 2, 0]), 79], // wrong argument types
    [encodeRequest(80, SYS.sendto, [1024, 'not bytes', 0, target]), 80],
    [encodeRequest(81, SYS.bind, [1024, { addr: '999.1.1.1', port: 70000 }]), 81],
    [encodeRequest(82, SYS.poll, [new Array(10_000).fill([1024, 1]), 0]), 82], // too many descriptors
    [encodeRequest(-5, SYS.null, []), 0], // negative call id
    [encodeRequest(83, SYS.sendto, [1024, new Uint8Array(2 << 20), 0, target]), 83], // over the frame limit
    ['a string, not a frame', 0],
    [{ callId: 84, sysno: 0 }, 0],
    [new Uint8Array(new SharedArrayBuffer(16)), 0],
  );
  // Every reply is also searched for bytes beyond its own: memory the kernel
  // handed over with a reply would carry other domains' traffic.
  const extra = attempt(attempts, 'read beyond a reply', 'memory behind each reply this domain received (the OTA image travels through the same kernel)');
  for (const [frame, id] of frames) {
    const bytes = channel.rawSyncBytes(frame);
    const [replyId, errno] = decodeFrame(bytes) as [number, number];
    if (replyId !== id && id !== 0) log(`kernel answered frame ${id} as ${replyId}`);
    tally(malformed, errno, true);
    const beyond = bytes.buffer.byteLength - bytes.byteLength;
    record(extra, beyond > 0 ? `${beyond} bytes beyond` : 'exact', beyond > 0);
  }

  // 6. Sockets until the kernel refuses: only this domain's quota may run out.
  const hoard = attempt(attempts, 'open sockets until refused', 'EMFILE at the handle quota is the expected end');
  const held: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    let handle = -1;
    const errno = errnoOf(() => (handle = sys.socket(AF_INET, SOCK_DGRAM)));
    tally(hoard, errno, false);
    if (errno !== 0) break;
    held.push(handle);
  }

  // Leave buffers queued in its own sockets, so its death has something to release.
  sys.bind(held[1]!, { addr: '127.0.0.1', port: 0 });
  const self = sys.getsockname(held[1]!);
  for (let i = 0; i < 8; i++) sys.sendto(held[2]!, forgedChunk, self);
  const holding = sys.stats();
  log(`holding ${holding.handles} handles and ${holding.buffers} buffers (${holding.bufferBytes} B)`);

  const summary = { attempts, holding };
  // Published before the crash, so the report has it even though the program never returns.
  publish(summary);
  if (args.crash) {
    throw new Error(`third-party library crashed on purpose, holding ${holding.handles} handles and ${holding.buffers} buffers`);
  }
  return summary;
}
