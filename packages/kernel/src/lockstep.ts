/**
 * Lockstep's conductor (docs/scenarios.md, "Lockstep"): one virtual clock
 * for every kernel of a run, all held in one worker, and the one loop that
 * decides what happens next. Nothing it does depends on when a message
 * arrived, only on the state the kernels are in when it looks:
 *
 * - while any domain of any kernel runs, it waits (what that domain asks
 *   next decides what the others see);
 * - frames that crossed a link, and sockets that were reset, are polled
 *   first, kernel by kernel in the order they joined;
 * - then the detaches the host asked for, then a round of calls on every
 *   kernel, then one host action (an attach) at a time;
 * - once nothing is left at this instant, the clock jumps to the earliest
 *   deadline of any kernel, unless the host holds it.
 *
 * One worker rather than one per kernel: a frame sent at virtual time t
 * then reaches its peer at a point of the loop, not at whatever point of the
 * peer's own loop a message happened to land.
 */
import { UNKNOWN_CALL_ID, type RestNotice } from '@moat/abi';

/** What the conductor asks of each kernel (Kernel implements it). */
export interface LockstepMember {
  /** Polls the stack if a wire delivered frames or sockets were reset; true if it did. */
  pollIfDue(): boolean;
  /** Some domain runs (it has no call queued or parked, or is being killed). */
  running(): boolean;
  /** Carries out the detaches the host asked for, in attach order; the names of awaited domains that went. */
  carryOutExits(): string[] | undefined;
  /** Serves one round of queued calls; true if there were any. */
  serveRound(): boolean;
  /** The domains the run waits for that have not ended on this kernel (undefined: not told). */
  readonly awaitedLeft: number | undefined;
  /** The earliest deadline of the kernel's own: stack, wires, parked calls, faults, watchdogs (Infinity: none). */
  nextDeadline(): number;
  /** Runs what came due at the conductor's `now`. */
  expire(): void;
  /** Stops serving: the host is about to kill every domain left. */
  hold(): void;
  /** Called after every step that may have answered calls (the worker wakes the domains it answered). */
  afterRound(): void;
}

/** Steps one advance may take before it gives up: kernels that never settle at one time are a bug. */
const LOCKSTEP_STEPS = 1_000_000;

interface RestAction {
  /** The domain it attaches: one the host announced waits for its due time. */
  name: string;
  run(): void;
}

export class Conductor {
  /** Virtual time, ms from the run's start. */
  now = 0;
  private readonly members: LockstepMember[] = [];
  private readonly restActions: RestAction[] = [];
  /**
   * Attaches the host announced, by domain name, and the virtual time each
   * is due: the clock goes no further until it has come. A domain declared
   * at the start is due at once, one started after another's log line when
   * that line is logged (LogNotice), a restarted one after its backoff.
   */
  private readonly due = new Map<string, number>();
  /** Announced attaches that wait for a line of another domain's log. */
  private gates: { name: string; after: string; pattern: RegExp }[] = [];
  private held = false;
  /** Every awaited domain has ended: no timer fires before the host's kills. */
  private over = false;
  private advancing = false;

  join(member: LockstepMember): void {
    this.members.push(member);
  }

  /**
   * Runs `run` (the attach of domain `name`) once every kernel is at rest and,
   * for an announced attach, once the clock has reached its due time. One
   * action per rest: the domain it starts runs to the next rest before the
   * following one.
   */
  whenAtRest(name: string, run: () => void): void {
    this.restActions.push({ name, run });
    this.advance();
  }

  /** The host will attach `name`: after `ms` of virtual time from now, or once `after.domain` logs a line matching `after.log`. */
  expectAttach(name: string, when: { ms?: number; after?: { domain: string; log: string } } = {}): void {
    this.gates = this.gates.filter((g) => g.name !== name);
    if (when.after) {
      this.due.delete(name);
      this.gates.push({ name, after: when.after.domain, pattern: new RegExp(when.after.log) });
    } else this.due.set(name, this.now + (when.ms ?? 0));
  }

  /** The host will not attach `name` after all (it could not start). */
  cancelAttach(name: string): void {
    this.due.delete(name);
    this.gates = this.gates.filter((g) => g.name !== name);
  }

  /** A domain attached: what was announced for it is done. */
  attached(name: string): void {
    this.due.delete(name);
  }

  /** A domain logged a line (LogNotice): the attaches that waited for it are due now. */
  logged(domain: string, line: string): void {
    this.gates = this.gates.filter((g) => {
      if (g.after !== domain || !g.pattern.test(line)) return true;
      this.due.set(g.name, this.now);
      return false;
    });
  }

  /** The host is about to kill every domain left: the clock stops on every kernel, whichever machine it asked first. */
  hold(): void {
    this.held = true;
    for (const m of this.members) m.hold();
  }

  /** Called after every event the worker receives. */
  advance(): void {
    if (this.advancing) return;
    this.advancing = true;
    try {
      for (let step = 0; ; step++) {
        if (step === LOCKSTEP_STEPS) throw new Error(`lockstep: no rest after ${LOCKSTEP_STEPS} steps at ${this.now} ms`);
        if (this.each((m) => m.pollIfDue())) continue;
        if (this.members.some((m) => m.running())) return;
        if (this.carryOutExits()) continue;
        if (this.each((m) => m.serveRound())) continue;
        const i = this.restActions.findIndex((a) => (this.due.get(a.name) ?? -Infinity) <= this.now);
        if (i >= 0) {
          this.restActions.splice(i, 1)[0]!.run();
          continue;
        }
        if (this.held || this.over) return;
        const attach = Math.min(Infinity, ...this.due.values());
        if (attach <= this.now) return; // an attach is due: the host's message moves things on
        const next = Math.min(attach, ...this.members.map((m) => m.nextDeadline()));
        if (next === Infinity) return; // idle: only a host event can change anything
        this.now = Math.max(this.now, next);
        for (const m of this.members) {
          m.expire();
          m.afterRound();
        }
      }
    } finally {
      this.advancing = false;
    }
  }

  /** Runs `step` on every kernel in the order they joined; each that did something gets its afterRound. */
  private each(step: (m: LockstepMember) => boolean): boolean {
    let any = false;
    for (const m of this.members) {
      if (!step(m)) continue;
      m.afterRound();
      any = true;
    }
    return any;
  }

  private carryOutExits(): boolean {
    let awaitedWent = false;
    const any = this.each((m) => {
      const went = m.carryOutExits();
      awaitedWent ||= !!went?.length;
      return went !== undefined;
    });
    if (awaitedWent && this.members.every((m) => !m.awaitedLeft)) this.over = true;
    return any;
  }

}

/**
 * Lockstep: whether a domain worker waits on its kernel, from what its
 * channel says (PortTransport in @moat/libc). It waits while it blocks on a
 * frame it posted (SIGNAL_BLOCKING names the frame), or once it has said
 * that its event loop only awaits replies (a RestNotice whose counts are
 * still the kernel's). Calls in the kernel are not enough: a domain with a
 * receive parked goes on running until it blocks or awaits.
 */
export class DomainRest {
  /** Messages received from the domain and replies posted to it, counted as the domain counts them. */
  private received = 0;
  private replied = 0;
  /** The call id whose answer wakes the domain, while it blocks on a frame. */
  private blockedOn: number | undefined;
  /** A notice matched the counts, and nothing has come or gone since. */
  private idle = false;

  /** A message (any but a notice) arrived; `blocking` is the signal's SIGNAL_BLOCKING word as it was then. */
  onMessage(blocking: number, callId: number): void {
    this.received = (this.received + 1) | 0;
    this.idle = false;
    if (blocking === this.received) this.blockedOn = callId;
  }

  /** A reply was posted: the answer to the frame it blocks on (or to an unreadable one) wakes it. */
  onReply(callId: number): void {
    this.replied = (this.replied + 1) | 0;
    this.idle = false;
    if (this.blockedOn !== undefined && (callId === this.blockedOn || callId === UNKNOWN_CALL_ID)) this.blockedOn = undefined;
  }

  noticed(notice: RestNotice): void {
    if (notice.rest.posted === this.received && notice.rest.taken === this.replied) this.idle = true;
  }

  get waiting(): boolean {
    return this.blockedOn !== undefined || this.idle;
  }
}
