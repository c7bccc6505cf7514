/**
 * The syscall fuzzer: a domain that sends its own channel a seeded stream of
 * hostile frames from @moat/abi's SyscallFuzzer (see FUZZ_KINDS) and judges
 * every answer: each frame must be answered with the call id and errno the
 * ABI's framing rules require, a frame the kernel counts as malformed is
 * tallied apart from one a handler refused, and a call that succeeds on a
 * handle this domain never got is a breach.
 *
 * To have something to aim at, it first opens sockets of every kind through
 * ordinary calls (bound and connected UDP, a TCP listener with a connection
 * to itself, a ping socket) and closes one. Blocking calls are bounded: every
 * socket it holds gets SO_RCVTIMEO and SO_SNDTIMEO of `blockMs` when it is
 * made and again after any setsockopt that succeeds on it, and a poll that
 * could wait without end (no timeout, on handles that are all its own) is
 * sent only when a poll with timeout 0 shows one of them ready; otherwise it
 * is tallied as skipped. Its own calls are counted, so the host can check
 * that the kernel counted exactly the frames sent plus those.
 */
import {
  decodeFrame,
  Errno,
  errnoName,
  FUZZ_KINDS,
  countsAsMalformed,
  SyscallFuzzer,
  SYS,
  SyscallError,
  type FuzzGroup,
  type FuzzKind,
  type Reply,
  type SyscallName,
} from '@moat/abi';
import { AF_INET, defineProgram, IPPROTO_ICMP, SO_RCVTIMEO, SO_SNDTIMEO, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, O_NONBLOCK, type SockAddr } from '@moat/libc';
import { attempt, record, type Attempt } from './library-kit.js';

export interface FuzzerArgs {
  seed: number;
  /** Frames to generate (sent, or skipped as unbounded polls). */
  frames: number;
  /** Kinds or groups of FUZZ_KINDS to draw from (default: all). */
  kinds?: (FuzzKind | FuzzGroup)[];
  /** Syscalls the schema-driven kinds build requests for (default: all). */
  syscalls?: SyscallName[];
  /** Other domains to grant to and revoke from (its own name is added: granting to itself is EINVAL). */
  domains?: string[];
  /** SO_RCVTIMEO and SO_SNDTIMEO on every socket it holds, in ms (default 2). */
  blockMs?: number;
  /** Longest poll timeout sent without first checking readiness, in ms (default 20). */
  pollMs?: number;
  /** Frames between progress reports (default 500). */
  progressEvery?: number;
}

export interface FuzzerSummary {
  seed: number;
  frames: number;
  /** Frames sent; each call blocks until its answer, so each was answered. */
  sent: number;
  /** Polls not sent because nothing could have ended their wait. */
  skipped: number;
  /** Frames the kernel must have counted as malformed (undecodable, or arguments off their schema). */
  expectedMalformed: number;
  /** Calls this domain made itself (set-up, timeouts, readiness checks): the kernel counts them too. */
  ownCalls: number;
  breaches: number;
  /** Answers that broke the ABI's rules otherwise: a wrong call id or errno, an own handle refused, EFAULT. */
  anomalies: number;
  /** The first breaches and anomalies, for the report. */
  findings: string[];
  /** Per kind: tries and outcomes ('OK', an errno name, 'malformed EINVAL', 'invalid EINVAL', 'nosys ENOSYS', 'skipped'). */
  kinds: Attempt[];
  /** Handles held at the end, by the ledger and by the kernel's own count. */
  held: { ledger: number; kernel: number };
  ms: number;
}

const MAX_FINDINGS = 20;

export default defineProgram<FuzzerArgs, FuzzerSummary>(({ name, args, channel, publish, log }) => {
  const started = performance.now();
  const blockMs = args.blockMs ?? 2;
  const pollMs = args.pollMs ?? 20;
  const every = args.progressEvery ?? 500;
  const fuzz = new SyscallFuzzer({ seed: args.seed, kinds: args.kinds, syscalls: args.syscalls, domains: [...(args.domains ?? []), name] });
  const ledger = fuzz.ledger;
  const kinds: Attempt[] = [];
  const tallies = new Map<FuzzKind, Attempt>(FUZZ_KINDS.map((k) => [k, attempt(kinds, k)]));
  const findings: string[] = [];
  let ownCalls = 0;
  let sent = 0;
  let skipped = 0;
  let expectedMalformed = 0;
  let breaches = 0;
  let anomalies = 0;

  const note = (what: string) => {
    if (findings.length < MAX_FINDINGS) findings.push(what);
  };
  /** One ordinary call (exactly one frame), counted. */
  const call = (syscall: SyscallName, ...callArgs: unknown[]): any => {
    ownCalls++;
    return channel.callSync(SYS[syscall], callArgs);
  };
  /** Bounds every blocking call on `h`; a refusal here means the ledger is wrong about holding it. */
  const arm = (h: number) => {
    for (const opt of [SO_RCVTIMEO, SO_SNDTIMEO]) {
      try {
        call('setsockopt', h, SOL_SOCKET, opt, blockMs);
      } catch (err) {
        anomalies++;
        note(`arming handle ${h}: ${(err as Error).message}`);
      }
    }
  };
  const own = (h: number) => {
    ledger.adopt(h);
    arm(h);
    return h;
  };

  /**
   * Sockets in the states the handlers tell apart: bound and connected UDP,
   * a TCP listener with a connection to itself (both ends), a ping socket.
   * Made at the start and again whenever the fuzzer's own closes leave it
   * holding few handles, so valid frames keep reaching deep into the handlers.
   */
  const lo = (port: number): SockAddr => ({ addr: '127.0.0.1', port });
  const replenish = () => {
    try {
      const udp = own(call('socket', AF_INET, SOCK_DGRAM, 0));
      call('bind', udp, lo(0));
      const [, udpPort] = call('getsockname', udp) as [string, number];
      ledger.learnPort(udpPort);
      const connected = own(call('socket', AF_INET, SOCK_DGRAM | O_NONBLOCK, 0));
      call('connect', connected, lo(udpPort));
      const listener = own(call('socket', AF_INET, SOCK_STREAM, 0));
      call('bind', listener, lo(0));
      call('listen', listener, 4);
      const [, tcpPort] = call('getsockname', listener) as [string, number];
      ledger.learnPort(tcpPort);
      const client = own(call('socket', AF_INET, SOCK_STREAM, 0));
      call('connect', client, lo(tcpPort));
      own((call('accept', listener) as [number])[0]);
      own(call('socket', AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    } catch (err) {
      if (!(err instanceof SyscallError)) throw err;
      // Its own quota spent (a domain given few handles or buffers): no more for now.
      if (err.errno === Errno.EMFILE || err.errno === Errno.ENOBUFS) return;
      // Otherwise ordinary calls on fresh sockets were refused: the kernel's fault, not the fuzzer's.
      anomalies++;
      note(`making its own sockets: ${err.message}`);
    }
  };
  replenish();
  // One handle closed before any frame, so stale-handle attacks have one from the start.
  const closed = call('socket', AF_INET, SOCK_DGRAM, 0) as number;
  call('close', closed);
  ledger.adopt(closed);
  ledger.forget(closed);

  const progress = () => publish({ seed: args.seed, frames: args.frames, sent, skipped, breaches, anomalies });
  for (let i = 0; i < args.frames; i++) {
    if (ledger.live.length < 4) replenish();
    const frame = fuzz.next();
    const tally = tallies.get(frame.kind)!;
    const v = frame.expect;
    if (ledger.mayWaitLong(v, pollMs) && !anyReady(v.class === 'call' ? (v.args[0] as [unknown, number][]) : [])) {
      skipped++;
      record(tally, 'skipped');
      continue;
    }
    const reply = decodeFrame(channel.rawSyncBytes(frame.message)) as Reply;
    sent++;
    if (countsAsMalformed(v)) expectedMalformed++;
    const seen = fuzz.observe(frame, reply);
    record(tally, seen.outcome, seen.breach !== undefined);
    if (seen.breach) {
      breaches++;
      note(`BREACH #${frame.index} (${frame.kind}): ${seen.breach}`);
      log(`BREACH: ${seen.breach}`);
    }
    if (seen.anomaly) {
      anomalies++;
      note(`#${frame.index} (${frame.kind}): ${seen.anomaly}`);
    }
    // A new socket, or options just changed on one: its waits must stay bounded.
    if (v.class === 'call' && reply[1] === 0) {
      if (v.syscall === 'socket') arm(reply[2] as number);
      else if (v.syscall === 'accept') arm((reply[2] as [number])[0]);
      else if (v.syscall === 'setsockopt' && ledger.owns(v.args[0])) arm(v.args[0] as number);
    }
    if ((i + 1) % every === 0) progress();
  }

  // The kernel's count of what this domain holds must match the ledger's.
  const kernelHeld = (call('stats') as { handles: number }).handles;
  if (kernelHeld !== ledger.live.length) {
    anomalies++;
    note(`at the end the kernel counts ${kernelHeld} handles, the ledger ${ledger.live.length}`);
  }
  progress();

  function anyReady(fds: [unknown, number][]): boolean {
    if (fds.length === 0) return false;
    try {
      return (call('poll', fds, 0) as number[]).some((r) => r !== 0);
    } catch (err) {
      if (!(err instanceof SyscallError)) throw err;
      anomalies++;
      note(`readiness check: ${errnoName(err.errno)}`);
      return false;
    }
  }

  return {
    seed: args.seed,
    frames: args.frames,
    sent,
    skipped,
    expectedMalformed,
    ownCalls,
    breaches,
    findings,
    anomalies,
    kinds: kinds.filter((a) => a.tries > 0),
    held: { ledger: ledger.live.length, kernel: kernelHeld },
    ms: Math.round(performance.now() - started),
  };
});
