/**
 * Runs a checked scenario: starts its machines and links, starts each domain
 * under a supervisor that applies its restart policy, injects the declared
 * faults, waits for the domains the run is about, and builds the report.
 */
import type { KernelStats } from '@moat/kernel';
import { collectTimeline } from './collect-timeline.js';
import type { DomainHandle, DomainOutcome, DomainStatus, Machine } from './machine.js';
import { Network } from './network.js';
import type { Attempt, DomainReport, ScenarioReport } from './report.js';
import { DEFAULT_TIMEOUT_MS, domainSpec, judgeRun, withFaults, type DomainDefinition, type FaultDefinition, type RunOptions, type ScenarioDefinition, type ScenarioRun } from './scenario.js';

/** Restart backoff doubles from `backoffMs` up to this. */
const MAX_BACKOFF_MS = 30_000;
const DEFAULT_BACKOFF_MS = 100;

/** Cancellable waits, so that nothing outlives the run. */
class Timers {
  private readonly pending = new Map<NodeJS.Timeout, () => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.pending.delete(t);
        resolve();
      }, ms);
      this.pending.set(t, resolve);
    });
  }

  after(ms: number, run: () => void): void {
    void this.sleep(ms).then(() => this.live && run());
  }

  live = true;

  /** Ends every wait at once (each resolves, and `after` callbacks do not run). */
  cancel(): void {
    this.live = false;
    for (const [t, resolve] of this.pending) {
      clearTimeout(t);
      resolve();
    }
    this.pending.clear();
  }
}

/**
 * One domain's supervisor, as an OTP supervisor keeps one child: starts it,
 * and when it ends starts it again if its policy says so, after a backoff
 * that doubles each time, at most `max` times.
 */
class Supervisor {
  readonly lives: DomainOutcome[] = [];
  current: DomainHandle | undefined;
  /** Settles when the domain is down for good (or never started). */
  readonly done: Promise<void>;
  private startedOnce!: () => void;
  /** Resolves when the first life has started. */
  readonly started = new Promise<void>((resolve) => (this.startedOnce = resolve));
  startError: string | undefined;

  constructor(
    readonly def: DomainDefinition,
    private readonly machine: Machine,
    private readonly seed: number,
    private readonly timers: Timers,
    private readonly stopping: () => boolean,
    gate: Promise<void>,
    private readonly faults: FaultDefinition[],
    /** Lockstep: the backoff is virtual time, which the kernel keeps (see DomainSpec.restartAfterMs). */
    private readonly lockstep = false,
  ) {
    this.done = gate.then(
      () => this.supervise(),
      (err: Error) => {
        this.startError = err.message;
        this.startedOnce();
      },
    );
  }

  private async supervise(): Promise<void> {
    const policy = this.def.restart?.when ?? 'never';
    const max = this.def.restart?.max ?? Infinity;
    let backoff = this.def.restart?.backoffMs ?? DEFAULT_BACKOFF_MS;
    /** Whether a life that ended so starts again, and after what backoff. */
    const restartAfter = (status: DomainStatus): number | undefined => {
      const restarts = this.lives.length; // this life not counted yet
      if (this.stopping() || policy === 'never' || (policy === 'on-failure' && status === 'returned') || restarts >= max) return undefined;
      return backoff;
    };
    for (;;) {
      try {
        const spec = domainSpec(this.def, this.seed, this.lives.length === 0 ? this.faults : []);
        this.current = await this.machine.spawn(this.lockstep ? { ...spec, restartAfterMs: restartAfter } : spec);
      } catch (err) {
        this.startError = (err as Error).message;
        this.startedOnce();
        return;
      }
      this.startedOnce();
      const out = await this.current.outcome;
      const wait = restartAfter(out.status);
      this.lives.push(out);
      if (wait === undefined) return;
      // Lockstep: the kernel holds the new attach until its clock reaches the exit's time plus the backoff.
      if (!this.lockstep) await this.timers.sleep(wait);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      if (this.stopping()) return;
    }
  }

  kill(reason: string): void {
    void this.current?.kill(reason);
  }

  /** Resolves with a log line of the current life that matches; rejects if the domain ends first. */
  async waitForLog(match: RegExp): Promise<string> {
    await this.started;
    if (!this.current) throw new Error(`${this.def.name} did not start: ${this.startError}`);
    return this.current.waitForLog(match);
  }
}

export async function runScenario(declared: ScenarioDefinition, options: RunOptions = {}): Promise<ScenarioReport> {
  const def = withFaults(declared, options.faults);
  const seed = options.seed ?? 1;
  const lockstep = options.lockstep === true;
  // In lockstep a timed kill is a kernel fault on the virtual clock; otherwise the host's own timer.
  const hostTimed = (f: FaultDefinition): f is FaultDefinition & { afterMs: number } => !lockstep && f.kind === 'kill' && f.afterMs !== undefined;
  const started = performance.now();
  const net = new Network(seed);
  const timers = new Timers();
  let stopping = false;
  const machines = new Map<string, Machine>();
  def.machines.forEach((m, i) => {
    // A MAC left out is a locally administered one, distinct per machine and interface.
    const interfaces = (m.interfaces ?? []).map((x, j) => ({ ...x, mac: x.mac ?? `02:00:00:00:${hex(i + 1)}:${hex(j + 1)}` }));
    // Scenario runs record the kernels' event trace, frames included, for the report (its cost: docs/architecture.md).
    machines.set(m.name, net.machine({ name: m.name, interfaces, gateway: m.gateway, poolBytes: m.poolBytes, captureDir: options.captureDir, trace: true, tracePackets: true, ...(lockstep ? { lockstep, seed } : {}) }));
  });
  try {
    for (const m of def.machines) {
      for (const f of m.allocationFaults ?? []) await machines.get(m.name)!.failAllocations(f);
    }
    for (const l of def.links ?? []) {
      const [a, b] = l.between.map((end) => {
        const [machine, iface] = end.split('.') as [string, string];
        return { machine: machines.get(machine)!, iface };
      }) as [{ machine: Machine; iface: string }, { machine: Machine; iface: string }];
      await net.link(a, b, l.faults);
    }
    const supervisors = new Map<string, Supervisor>();
    // Lockstep: the clock waits for each declared domain's attach when it is due (at once, or when the line its
    // startAfter names is logged, which the kernel sees too), and stops once the domains the run waits for have ended.
    if (lockstep) {
      for (const [name, m] of machines) {
        const mine = def.domains.filter((d) => d.machine === name);
        await m.expect(mine.map((d) => ({ name: d.name, after: d.startAfter })), mine.filter((d) => d.awaited !== false).map((d) => d.name));
      }
    }
    for (const d of def.domains) {
      const after = d.startAfter;
      const gate = after ? supervisors.get(after.domain)!.waitForLog(new RegExp(after.log)).then(() => undefined) : Promise.resolve();
      const planned = (def.faults ?? []).filter((f) => f.domain === d.name && !hostTimed(f));
      const sup = new Supervisor(d, machines.get(d.machine)!, seed, timers, () => stopping, gate, planned, lockstep);
      supervisors.set(d.name, sup);
      // Domains start in declaration order: the next waits until this one is running (or could not start).
      await sup.started;
      // One that could not start never attaches: the kernel stops waiting for it.
      if (lockstep && !sup.current) await machines.get(d.machine)!.cancelAttach(d.name);
    }
    // Faults apply to a domain's first life. A timed kill is the host's own timer (it works whatever the
    // domain is doing); the others its kernel plans before the domain's first call and delivers at a call.
    for (const f of def.faults ?? []) {
      if (!hostTimed(f)) continue; // planned in its kernel at start (Supervisor)
      const sup = supervisors.get(f.domain)!;
      const ms = f.afterMs;
      void sup.started.then(() => timers.after(ms, () => sup.kill(`fault: kill after ${ms} ms`)));
    }
    const awaited = [...supervisors.values()].filter((s) => s.def.awaited !== false);
    const timeoutMs = def.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timedOut = false;
    await Promise.race([
      Promise.all(awaited.map((s) => s.done)),
      timers.sleep(timeoutMs).then(() => (timedOut = timers.live)),
    ]);
    stopping = true;
    // As an OTP supervisor's shutdown: a domain the run did not wait for gets its shutdownMs to end on its own.
    if (!timedOut) await Promise.all([...supervisors.values()].map((s) => (s.def.shutdownMs ? Promise.race([s.done, timers.sleep(s.def.shutdownMs)]) : undefined)));
    // Lockstep: the kernels stop first, so the kills land at one point of the log whatever order they end in.
    if (lockstep) await Promise.all([...machines.values()].map((m) => m.hold()));
    for (const s of supervisors.values()) s.kill(timedOut ? `scenario timeout after ${timeoutMs} ms` : 'scenario over');
    await Promise.all([...supervisors.values()].map((s) => s.done));
    const kernels: Record<string, KernelStats> = {};
    for (const [name, m] of machines) kernels[name] = await m.stats();
    const timeline = await collectTimeline([...machines.values()], performance.timeOrigin + started);
    const lives = Object.fromEntries([...supervisors].map(([name, s]) => [name, s.lives]));
    const outcomes = Object.fromEntries([...supervisors].flatMap(([name, s]) => (s.lives.length ? [[name, s.lives.at(-1)!]] : [])));
    const run: ScenarioRun = { seed, outcomes, lives, kernels, timedOut };
    const verdicts = judgeRun(def, run);
    const shown = kernels[def.reportMachine ?? def.machines[0]!.name]!;
    return {
      scenario: def.name,
      description: def.description,
      seed,
      ...(lockstep ? { lockstep } : {}),
      durationMs: performance.now() - started,
      domains: [...supervisors.values()].map((s) => supervisedReport(s)),
      kernel: {
        internalErrors: shown.internalErrors,
        lastInternalError: shown.lastInternalError,
        leaks: shown.leaks,
        pool: shown.pool,
        stack: shown.stack,
      },
      links: linkReports(def, kernels),
      captures: Object.values(kernels).flatMap((k) => k.interfaces.flatMap((i) => (i.capture ? [i.capture.path] : []))),
      timeline,
      verdicts,
      passed: verdicts.every((v) => v.pass),
    };
  } finally {
    stopping = true;
    timers.cancel();
    await net.shutdown();
  }
}

const hex = (n: number) => (n & 0xff).toString(16).padStart(2, '0');

function supervisedReport(s: Supervisor): DomainReport {
  const last = s.lives.at(-1);
  if (!last) {
    return { name: s.def.name, role: s.def.role ?? s.def.name, status: 'exited', error: `never started: ${s.startError ?? 'unknown'}`, attempts: [], calls: {}, malformedFrames: 0, restarts: 0 };
  }
  const report = domainReport(last, s.def.role ?? s.def.name, s.lives.length - 1);
  if (s.lives.length > 1) report.lives = s.lives.map((l) => ({ status: l.status, error: l.error }));
  return report;
}

/** A domain's part of the report, from its outcome: what it returned or last published, and the kernel's tallies. */
export function domainReport(out: DomainOutcome, role: string, restarts = 0): DomainReport {
  const summary = (out.value ?? out.published) as { attempts?: Attempt[] } | undefined;
  return {
    name: out.name,
    role,
    status: out.status,
    error: out.error,
    summary: summary && typeof summary === 'object' && 'attempts' in summary ? { ...summary, attempts: undefined } : summary,
    attempts: (summary && typeof summary === 'object' && Array.isArray(summary.attempts) ? summary.attempts : []) as Attempt[],
    calls: out.final?.calls ?? {},
    malformedFrames: out.final?.malformed ?? 0,
    bytes: out.final?.bytes,
    final: out.final?.accounting,
    restarts,
  };
}

/** Each direction of each link, with what its faults did (the sending interface's wire counts them). */
function linkReports(def: ScenarioDefinition, kernels: Record<string, KernelStats>): ScenarioReport['links'] {
  return (def.links ?? []).flatMap((l) => {
    const stats = (end: string) => {
      const [machine, iface] = end.split('.') as [string, string];
      return kernels[machine]?.interfaces.find((i) => i.name === iface)?.wire ?? {};
    };
    const [a, b] = l.between;
    return [
      { name: `${a} -> ${b}`, faults: l.faults ?? {}, stats: stats(a) },
      { name: `${b} -> ${a}`, faults: l.faults ?? {}, stats: stats(b) },
    ];
  });
}
