/**
 * The handle forger: a neighbour of the OTA that uses handle numbers it was
 * never given, while the OTA is halfway through its download. Every call
 * that takes a handle is tried on each of:
 *
 * - random numbers (seeded), and near-valid ones: its own live handles and
 *   the OTA's with the generation or slot moved by one or a few, and with one
 *   bit flipped;
 * - negative, huge and non-integer values (fractions, NaN, strings, null,
 *   arrays, objects);
 * - stale handles: its own, closed, with a new socket in the same slot;
 * - foreign handles: the numbers the OTA holds (it tells its neighbour, as a
 *   library linked into the app could learn them).
 *
 * Every one must be refused with EBADF (or ENOTSOCK), and poll must answer
 * POLLNVAL. Its own live handles are never among the numbers tried (on those
 * a call rightly succeeds); to make sure the OTA's numbers are not live in
 * its own table too, it first ages its first slots by a generation.
 */
import {
  AF_INET,
  defineProgram,
  errnoName,
  errnoOf,
  F_GETFL,
  F_SETFL,
  MSG_DONTWAIT,
  O_NONBLOCK,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  Rights,
  SHUT_RDWR,
  SO_RCVBUF,
  SO_RCVTIMEO,
  SOCK_DGRAM,
  SOL_SOCKET,
  type SyncSockets,
} from '@moat/libc';
import { attempt, awaitMidway, connectSide, record, reportSide, seededInts, type Attempt } from './library-kit.js';

export interface HandleForgerArgs {
  /** Where it waits for the OTA to start it (127.0.0.1). */
  controlPort: number;
  seed: number;
}

/** Handle numbers: the low 10 bits pick a slot, the rest are the slot's generation (packages/kernel handle-table.ts). */
const SLOT = 1024;

export interface HandleForgerResult {
  attempts: Attempt[];
  /** Per call: results over every forged handle. */
  byCall: Record<string, Record<string, number>>;
  /** The socket that took a stale handle's slot, checked after the stale calls. */
  reuse: { rounds: number; sameSlot: number; untouched: number; failures: string[] };
  /** Numbers tried per kind. */
  handles: Record<string, number>;
}

export default defineProgram<HandleForgerArgs, HandleForgerResult>(({ sys, args, log }) => {
  // Age slots 0-7 by one generation: the OTA's first handles (generation 1) are then dead numbers here.
  const aging = Array.from({ length: 8 }, () => sys.socket(AF_INET, SOCK_DGRAM));
  for (const h of aging) sys.close(h);
  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(control, { addr: '127.0.0.1', port: args.controlPort });
  log('loaded');
  const { info } = awaitMidway(sys, control);
  const side = connectSide(sys, info);
  const anchor = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(anchor, { addr: '127.0.0.1', port: 0 });
  const own = new Set<number>([control, side, anchor]);

  const attempts: Attempt[] = [];
  const byCall: Record<string, Record<string, number>> = {};
  const target = { addr: '127.0.0.1', port: 9 };
  const payload = new Uint8Array(32).fill(0x66);
  // Every call that names a handle, each with arguments valid but for the handle; close last.
  const calls: [string, (h: number) => unknown][] = [
    ['sendto', (h) => sys.sendto(h, payload, target)],
    ['recvfrom', (h) => sys.recvfrom(h, 100, MSG_DONTWAIT)],
    ['bind', (h) => sys.bind(h, { addr: '0.0.0.0', port: 0 })],
    ['connect', (h) => sys.connect(h, info.server)],
    ['listen', (h) => sys.listen(h, 1)],
    ['accept', (h) => sys.accept(h)],
    ['shutdown', (h) => sys.shutdown(h, SHUT_RDWR)],
    ['getsockname', (h) => sys.getsockname(h)],
    ['getpeername', (h) => sys.getpeername(h)],
    ['setsockopt', (h) => sys.setsockopt(h, SOL_SOCKET, SO_RCVTIMEO, 1)],
    ['getsockopt', (h) => sys.getsockopt(h, SOL_SOCKET, SO_RCVBUF)],
    ['fcntl F_SETFL', (h) => sys.fcntl(h, F_SETFL, O_NONBLOCK)],
    ['fcntl F_GETFL', (h) => sys.fcntl(h, F_GETFL)],
    ['grant', (h) => sys.grant(h, info.name, Rights.READ)],
    ['revoke', (h) => sys.revoke(h, info.name)],
    ['close', (h) => sys.close(h)],
  ];
  const REFUSED = new Set(['EBADF', 'ENOTSOCK']);
  /** Tries every call on `h`; anything but a bad-handle refusal counts against isolation (a success is a breach). */
  const forge = (a: Attempt, h: unknown) => {
    for (const [name, call] of calls) {
      const errno = errnoOf(() => call(h as number));
      const outcome = errno === 0 ? 'OK' : errnoName(errno);
      record(a, outcome, errno === 0);
      const per = (byCall[name] ??= {});
      per[outcome] = (per[outcome] ?? 0) + 1;
      if (!REFUSED.has(outcome) && a.outcomes[outcome] === 1) log(`${a.name}: ${name}(${String(h)}) gave ${outcome}`);
    }
    const [revents] = sys.poll([{ handle: h as number, events: POLLIN | POLLOUT }], 0);
    const outcome = revents === POLLNVAL ? 'POLLNVAL' : `poll revents ${revents}`;
    record(a, outcome, revents !== POLLNVAL);
    const per = (byCall.poll ??= {});
    per[outcome] = (per[outcome] ?? 0) + 1;
  };

  // Stale: a handle of its own, closed, with a new socket in the same slot. The stale number is
  // tried on every call, then the new socket must be exactly as it was set up.
  const stale = attempt(attempts, 'stale handles', 'its own handles after close, while a new socket holds the slot');
  const reuse = { rounds: 0, sameSlot: 0, untouched: 0, failures: [] as string[] };
  const dead: number[] = [];
  let holder = sys.socket(AF_INET, SOCK_DGRAM);
  for (let round = 0; round < 4; round++) {
    const closed = holder;
    sys.close(closed);
    dead.push(closed);
    holder = sys.socket(AF_INET, SOCK_DGRAM); // the lowest free slot: the one just freed
    reuse.rounds++;
    if (holder % SLOT === closed % SLOT && holder !== closed) reuse.sameSlot++;
    const check = setUpCanary(sys, holder, anchor);
    for (const h of dead) forge(stale, h);
    const failed = check();
    if (failed.length === 0) reuse.untouched++;
    else reuse.failures.push(...failed.map((f) => `round ${round}: ${f}`));
  }
  own.add(holder);

  const next = seededInts(args.seed);
  const notOwn = (h: unknown) => !(typeof h === 'number' && own.has(h));
  const kinds: [string, string, unknown[]][] = [];
  const random = [
    ...Array.from({ length: 48 }, () => next() >>> 1),
    // Plausible ones: generations 1-63, any slot.
    ...Array.from({ length: 16 }, () => SLOT * (1 + (next() % 63)) + (next() % SLOT)),
  ];
  kinds.push(['random handles', 'seeded: 48 31-bit numbers, 16 with a small generation and any slot', random]);
  const foreign = [...new Set([...Object.values(info.handles), ...Array.from({ length: 8 }, (_, slot) => SLOT + slot)])];
  const near = (h: number) => [h - 1, h + 1, h - SLOT, h + SLOT, h - 2 * SLOT, h + 2 * SLOT, h + 5 * SLOT, h + 64 * SLOT, ...Array.from({ length: 16 }, (_, b) => h ^ (1 << b))];
  kinds.push(['near-valid handles', "its own live handles and the OTA's, with the generation or slot moved, or one of bits 0-15 flipped", [...own, ...foreign].flatMap(near)]);
  kinds.push(['negative handles', '-1, -2, -1024, -1025, -2^31, -(2^53-1), -0', [-1, -2, -SLOT, -SLOT - 1, -(2 ** 31), -Number.MAX_SAFE_INTEGER, -0]]);
  kinds.push(['huge handles', '2^31-1 ... 2^60, 1e308, Infinity', [2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + SLOT, Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 60, 1e308, Infinity]]);
  kinds.push([
    'non-integer handles',
    'fractions, NaN, -Infinity, strings, booleans, null, an array, an object',
    [SLOT + 0.5, 1025.000001, NaN, -Infinity, '1024', '0x400', null, true, false, [SLOT], { handle: SLOT }],
  ]);
  kinds.push(['foreign handles', `the OTA's handles (${Object.entries(info.handles).map(([k, v]) => `${k} ${v}`).join(', ')}) and generation-1 slots 0-7`, foreign]);
  const handles: Record<string, number> = { stale: dead.length };
  for (const [name, note, list] of kinds) {
    const a = attempt(attempts, name, note);
    const tried = [...new Set(list)].filter(notOwn);
    handles[name] = tried.length;
    for (const h of tried) forge(a, h);
  }
  const breaches = attempts.reduce((n, a) => n + a.breaches, 0);
  log(`forged ${Object.values(handles).reduce((a, b) => a + b, 0)} handles, ${attempts.reduce((n, a) => n + a.tries, 0)} calls, ${breaches} breaches`);
  for (const h of own) if (h !== side) sys.close(h);
  reportSide(sys, side, `forged-handles done: ${breaches} breaches`);
  return { attempts, byCall, reuse, handles };
});

/**
 * Sets a socket up so any call that reached it by mistake would show:
 * bound, a distinctive receive timeout, blocking, one datagram queued.
 * Returns the check, which lists what changed.
 */
function setUpCanary(sys: SyncSockets, s: number, sender: number): () => string[] {
  sys.bind(s, { addr: '127.0.0.1', port: 0 });
  sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, 777);
  const addr = sys.getsockname(s);
  const canary = new TextEncoder().encode(`canary ${s}`);
  sys.sendto(sender, canary, addr);
  return () => {
    const failed: string[] = [];
    const check = (what: string, ok: () => boolean) => {
      try {
        if (!ok()) failed.push(what);
      } catch (err) {
        failed.push(`${what}: ${(err as Error).message}`);
      }
    };
    check('still bound to its port', () => {
      const now = sys.getsockname(s);
      return now.port === addr.port && now.addr === addr.addr;
    });
    check('SO_RCVTIMEO still 777', () => sys.getsockopt(s, SOL_SOCKET, SO_RCVTIMEO) === 777);
    check('still blocking', () => sys.fcntl(s, F_GETFL) === 0);
    check('its datagram still queued', () => Buffer.from(sys.recv(s, 100, MSG_DONTWAIT)).equals(Buffer.from(canary)));
    return failed;
  };
}
