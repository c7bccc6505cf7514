/**
 * Use after close: a domain closes a socket and keeps using its handle while
 * a new socket of the same kind takes the slot (a handle table reuses the
 * lowest free slot, so the new socket gets the old number's slot with the
 * next generation). Each round sets the new socket up so that any call that
 * reached it by the old handle would show: data queued in it, a distinctive
 * option, a peer listening for stray data. Then every call is made on the
 * old handle, and the new socket is checked.
 *
 * Kinds of round: a bound UDP socket, a TCP listener, a connected TCP socket,
 * calls pipelined with no wait (close, socket, then the old handle, all in
 * flight at once, so the kernel serves the stale use right after the reuse),
 * and a receive parked on the socket when it is closed.
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
  SO_RCVTIMEO,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  type SyncSockets,
} from '@moat/libc';
import { attempt, record, type Attempt } from './library-kit.js';

export interface UseAfterCloseArgs {
  /** Rounds of each kind. */
  rounds: number;
}

type Kind = 'udp' | 'tcp listener' | 'tcp connected' | 'pipelined' | 'parked recv';

export interface UseAfterCloseResult {
  attempts: Attempt[];
  rounds: Record<Kind, { rounds: number; sameSlot: number; untouched: number }>;
  failures: string[];
  /** How the receive parked on the socket ended when it was closed (per round). */
  parkedEndings: Record<string, number>;
}

const SLOT = 1024;
const CANARY_TIMEO = 4321;

export default defineProgram<UseAfterCloseArgs, UseAfterCloseResult>(async ({ sys, async, args, log }) => {
  const attempts: Attempt[] = [];
  const stale = attempt(attempts, 'stale handle, every call', 'the closed handle on every handle-taking call, a new socket in its slot');
  const failures: string[] = [];
  const kinds: Kind[] = ['udp', 'tcp listener', 'tcp connected', 'pipelined', 'parked recv'];
  const rounds = Object.fromEntries(kinds.map((k) => [k, { rounds: 0, sameSlot: 0, untouched: 0 }])) as UseAfterCloseResult['rounds'];
  const parkedEndings: Record<string, number> = {};

  // Its helpers hold the lowest slots for the whole run, so each round's sockets land in the same slot.
  const helper = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(helper, { addr: '127.0.0.1', port: 0 });
  sys.listen(helper, 16);
  const helperAddr = sys.getsockname(helper);
  const sender = sys.socket(AF_INET, SOCK_DGRAM);

  /** Every call on the stale handle; each must be refused as a bad handle (poll: POLLNVAL). Close comes last. */
  const useStale = (h: number, peer: { addr: string; port: number }) => {
    const calls: (() => unknown)[] = [
      () => sys.sendto(h, new TextEncoder().encode('STALE'), peer),
      () => sys.send(h, new TextEncoder().encode('STALE')),
      () => sys.recvfrom(h, 100, MSG_DONTWAIT),
      () => sys.bind(h, { addr: '127.0.0.1', port: 0 }),
      () => sys.connect(h, peer),
      () => sys.listen(h, 1),
      () => sys.accept(h),
      () => sys.shutdown(h, SHUT_RDWR),
      () => sys.getsockname(h),
      () => sys.getpeername(h),
      () => sys.setsockopt(h, SOL_SOCKET, SO_RCVTIMEO, 1),
      () => sys.getsockopt(h, SOL_SOCKET, SO_RCVTIMEO),
      () => sys.fcntl(h, F_SETFL, O_NONBLOCK),
      () => sys.grant(h, 'nobody-at-all', Rights.READ),
      () => sys.close(h),
    ];
    for (const call of calls) {
      const errno = errnoOf(call);
      record(stale, errno === 0 ? 'OK' : errnoName(errno), errno === 0);
    }
    const [revents] = sys.poll([{ handle: h, events: POLLIN | POLLOUT }], 0);
    record(stale, revents === POLLNVAL ? 'POLLNVAL' : `revents ${revents}`, revents !== POLLNVAL);
  };

  for (let round = 0; round < args.rounds; round++) {
    for (const kind of kinds) {
      const r = rounds[kind];
      r.rounds++;
      const failed: string[] = [];
      const check = (what: string, ok: () => boolean) => {
        try {
          if (!ok()) failed.push(what);
        } catch (err) {
          failed.push(`${what}: ${(err as Error).message}`);
        }
      };
      let old: number;
      let fresh: number;
      const peers: number[] = [];
      if (kind === 'pipelined') {
        // Nothing waits between these: the kernel takes them in order, the stale ones right after the reuse.
        old = sys.socket(AF_INET, SOCK_DGRAM);
        const inFlight = [
          async.close(old).then(() => 0, errnoFromRejection),
          async.socket(AF_INET, SOCK_DGRAM),
          async.sendto(old, new TextEncoder().encode('STALE'), helperAddr).then(() => 0, errnoFromRejection),
          async.recv(old, 100, MSG_DONTWAIT).then(() => 0, errnoFromRejection),
          async.setsockopt(old, SOL_SOCKET, SO_RCVTIMEO, 1).then(() => 0, errnoFromRejection),
          async.close(old).then(() => 0, errnoFromRejection),
        ];
        const [closed, made, ...staleErrnos] = await Promise.all(inFlight);
        fresh = made;
        check('the first close succeeded', () => closed === 0);
        for (const errno of staleErrnos) record(stale, errno === 0 ? 'OK' : errnoName(errno), errno === 0);
        check('the new socket is usable', () => sys.getsockopt(fresh, SOL_SOCKET, SO_RCVTIMEO) === 0);
      } else if (kind === 'parked recv') {
        old = sys.socket(AF_INET, SOCK_DGRAM);
        sys.bind(old, { addr: '127.0.0.1', port: 0 });
        const parked = async.recv(old, 100).then(
          (data) => `returned ${data.length} bytes`,
          (err: { code?: string }) => err.code ?? 'threw',
        );
        sys.null(); // the parked receive reached the kernel first
        sys.close(old);
        fresh = sys.socket(AF_INET, SOCK_DGRAM);
        sys.bind(fresh, { addr: '127.0.0.1', port: 0 });
        sys.sendto(sender, new TextEncoder().encode('for the new socket'), sys.getsockname(fresh));
        const ending = await parked;
        parkedEndings[ending] = (parkedEndings[ending] ?? 0) + 1;
        check('the parked receive ended with ECONNRESET', () => ending === 'ECONNRESET');
        useStale(old, helperAddr);
        check("the new socket's datagram is still its own", () => new TextDecoder().decode(sys.recv(fresh, 100, MSG_DONTWAIT)) === 'for the new socket');
      } else {
        const type = kind === 'udp' ? SOCK_DGRAM : SOCK_STREAM;
        old = sys.socket(AF_INET, type);
        if (kind === 'tcp connected') {
          sys.connect(old, helperAddr);
          peers.push(sys.accept(helper).handle);
          sys.send(peers[0]!, new TextEncoder().encode('for the old socket'));
        } else sys.bind(old, { addr: '127.0.0.1', port: 0 });
        sys.close(old);
        fresh = sys.socket(AF_INET, type);
        sys.setsockopt(fresh, SOL_SOCKET, SO_RCVTIMEO, CANARY_TIMEO);
        let freshPeer = -1;
        if (kind === 'udp') {
          sys.bind(fresh, { addr: '127.0.0.1', port: 0 });
          sys.sendto(sender, new TextEncoder().encode('canary'), sys.getsockname(fresh));
        } else if (kind === 'tcp listener') {
          sys.bind(fresh, { addr: '127.0.0.1', port: 0 });
          sys.listen(fresh, 4);
        } else {
          sys.connect(fresh, helperAddr);
          freshPeer = sys.accept(helper).handle;
          sys.setsockopt(freshPeer, SOL_SOCKET, SO_RCVTIMEO, CANARY_TIMEO);
          peers.push(freshPeer);
          sys.send(freshPeer, new TextEncoder().encode('for the new socket'));
        }
        const name = sys.getsockname(fresh);
        useStale(old, kind === 'udp' ? name : helperAddr);
        check('SO_RCVTIMEO as set', () => sys.getsockopt(fresh, SOL_SOCKET, SO_RCVTIMEO) === CANARY_TIMEO);
        check('still blocking', () => sys.fcntl(fresh, F_GETFL) === 0);
        check('same local address', () => {
          const now = sys.getsockname(fresh);
          return now.addr === name.addr && now.port === name.port;
        });
        if (kind === 'udp') check('its datagram still queued', () => new TextDecoder().decode(sys.recv(fresh, 100, MSG_DONTWAIT)) === 'canary');
        if (kind === 'tcp listener') {
          check('still listening', () => {
            const c = sys.socket(AF_INET, SOCK_STREAM);
            sys.connect(c, name);
            sys.close(sys.accept(fresh).handle);
            sys.close(c);
            return true;
          });
        }
        if (kind === 'tcp connected') {
          check('its own data, and only that, is still queued', () => readAvailable(sys, fresh) === 'for the new socket');
          check('its peer got nothing from the old handle', () => {
            sys.send(fresh, new TextEncoder().encode('from the new socket'));
            return readAvailable(sys, freshPeer) === 'from the new socket';
          });
        }
      }
      if (fresh % SLOT === old % SLOT && fresh !== old) r.sameSlot++;
      else failed.push(`the new socket ${fresh} is not in the slot of ${old}`);
      if (failed.length === 0) r.untouched++;
      else failures.push(...failed.map((f) => `${kind} round ${round}: ${f}`));
      for (const p of peers) sys.close(p);
      sys.close(fresh);
    }
  }
  sys.close(sender);
  sys.close(helper);
  log(`${stale.tries} stale calls, ${stale.breaches} succeeded; ${failures.length} failed checks`);
  return { attempts, rounds, failures: failures.slice(0, 20), parkedEndings };
});

const errnoFromRejection = (err: { errno?: number }) => err.errno ?? -1;

/** What a stream socket has to read within a moment (its receive timeout bounds the wait for the first bytes). */
function readAvailable(sys: SyncSockets, s: number): string {
  const first = sys.recv(s, 4096);
  let text = new TextDecoder().decode(first);
  for (;;) {
    try {
      text += new TextDecoder().decode(sys.recv(s, 4096, MSG_DONTWAIT));
    } catch {
      return text;
    }
  }
}
