/**
 * A simulated machine as the host sees it: its kernel, in a worker of its own
 * (or, in lockstep, in the one worker every machine of the run shares), and
 * the domains attached to it. The host only wires and observes; it keeps no
 * kernel state.
 * Each domain gets its channel (a MessagePort whose other end the kernel
 * holds) and a wake-up word, and nothing else. A domain runs in a worker, or
 * in a child process whose pipes the host bridges to that same port
 * (process-domain.ts; docs/isolation.md compares the two).
 */
import { MessageChannel, Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type WireSpec, type DomainStats, type KernelStats, type KernelTimeline, type KernelWorkerData, type Limits, type FaultRequest, type AllocationFault } from '@moat/kernel';
import { DOMAIN_RUNTIME_URL, type DomainWorkerData } from '@moat/libc';
import { CHANNEL_SIGNAL_BYTES, RING_SIGNAL_BYTES } from '@moat/abi';
import { workerRunner, type DomainRunner, type Isolation } from './domain-runner.js';
import { planProcessDomain, ProcessRunner } from './process-domain.js';
import type { ProcessPermissions } from './process-permissions.js';
import { guardHostInspector } from './host-guard.js';
import { KernelWorker, type KernelEvent, type KernelRequest } from './kernel-worker.js';
import type { LinkFaults } from '@moat/netstack';

export interface DomainSpec {
  name: string;
  /** Path or file URL of the program module (its default export is the program). */
  program: string | URL;
  args?: unknown;
  limits?: Partial<Limits>;
  /**
   * V8 heap limits of the domain's worker: running out ends the domain, not
   * the host. A process domain takes maxOldGenerationSizeMb only (as
   * --max-old-space-size).
   */
  resourceLimits?: ResourceLimits;
  /**
   * Where the domain runs: a worker thread of the host's process (the
   * default), or a child process of its own, started under Node's permission
   * model where this Node has one (no file-system writes, child processes or
   * workers). See docs/isolation.md for what each protects against.
   */
  isolation?: Isolation;
  /**
   * Isolation 'process' only: paths the child may read besides the ones it
   * always may (its program's package, @moat/libc, and what they depend on).
   */
  allowFsRead?: string[];
  /** The kernel has the domain killed once it runs this long with no syscall in the kernel (a hang). */
  watchdogMs?: number;
  /** Faults its kernel plans for it before its first call (see Machine.injectFault). */
  faults?: FaultRequest[];
  /**
   * Lockstep: asked once the domain has ended, how it ended: the virtual ms
   * after which its supervisor starts it again, or undefined if it will not.
   * The kernel records it with the exit and keeps its clock from passing
   * that time until the new life attaches.
   */
  restartAfterMs?: (status: DomainStatus) => number | undefined;
}

export type DomainStatus = 'returned' | 'threw' | 'exited' | 'out-of-memory' | 'killed';

export interface DomainOutcome {
  name: string;
  status: DomainStatus;
  /** What the program returned (status 'returned'). */
  value?: unknown;
  /** The last value it published before it ended. */
  published?: unknown;
  /** The error message (status 'threw' or 'out-of-memory'), the kill reason, or for a process a signal ended, 'ended by <signal>'. */
  error?: string;
  exitCode?: number;
  /** The signal that ended a process domain (SIGKILL after kill(); SIGSEGV, SIGABRT... after a crash). */
  signal?: NodeJS.Signals;
  logs: string[];
  /** The kernel's final accounting of the domain, taken after it released everything. */
  final?: DomainStats;
}

export class DomainHandle {
  readonly logs: string[] = [];
  /** The last value the program published (kept even if it later crashed). */
  published: unknown;
  /** Settles when the domain has ended and the kernel has released it. */
  readonly outcome: Promise<DomainOutcome>;
  /** Where it runs: a worker thread, or a child process. */
  readonly isolation: Isolation;
  /** The child's process id (isolation 'process'). */
  readonly pid: number | undefined;
  /** What the child may do under the permission model (isolation 'process' where Node has one). */
  readonly permissions: ProcessPermissions | undefined;
  private killReason: string | undefined;

  /** @internal Machine.spawn makes these. */
  constructor(
    readonly name: string,
    private readonly runner: DomainRunner,
    release: (reason: string, status: DomainStatus) => Promise<DomainStats | undefined>,
  ) {
    this.isolation = runner.isolation;
    this.pid = runner.pid;
    this.permissions = runner.permissions;
    let value: unknown;
    let returned = false;
    runner.onEvent((e) => {
      if (e.event === 'log') this.logs.push(e.message);
      else if (e.event === 'publish') this.published = e.value;
      else if (e.event === 'result') (value = e.value), (returned = true);
    });
    this.outcome = runner.ended.then(async (end) => {
      this.killReason ??= end.stoppedBy;
      const status: DomainStatus = this.killReason
        ? 'killed'
        : end.outOfMemory !== undefined
          ? 'out-of-memory'
          : end.error !== undefined
            ? 'threw'
            : returned
              ? 'returned'
              : 'exited';
      const error = this.killReason ?? end.outOfMemory ?? end.error;
      const final = await release(error ?? (returned ? 'returned' : end.signal ? `signal ${end.signal}` : `exit ${end.exitCode}`), status);
      return {
        name,
        status,
        value,
        published: this.published,
        error: error ?? (end.signal ? `ended by ${end.signal}` : undefined),
        exitCode: end.exitCode,
        ...(end.signal ? { signal: end.signal } : {}),
        logs: this.logs,
        final,
      };
    });
  }

  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(match: RegExp): Promise<string> {
    const seen = this.logs.find((l) => match.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (settle: () => void) => {
        if (settled) return;
        settled = true;
        unsubscribe();
        settle();
      };
      const unsubscribe = this.runner.onEvent((e) => {
        if (e.event === 'log' && match.test(e.message)) done(() => resolve(e.message));
      });
      void this.runner.ended.then(() => done(() => reject(new Error(`${this.name} ended before logging ${match}`))));
    });
  }

  /** Stops the domain at once (a worker is terminated, a child process gets SIGKILL). */
  async kill(reason = 'killed'): Promise<DomainOutcome> {
    this.killReason ??= reason;
    await this.runner.terminate();
    return this.outcome;
  }
}

export interface MachineOptions extends Omit<KernelWorkerData, 'machineName'> {
  name?: string;
}

export class Machine {
  readonly name: string;
  /** @internal The kernel worker: this machine's own, or in lockstep the one every machine of the run shares. */
  readonly worker: KernelWorker;
  /** Settles once the worker holds this machine (a machine that joins a worker is added by a request). */
  private readonly ready: Promise<unknown>;
  private readonly domains = new Map<string, DomainHandle>();
  /** Domains the kernel reported for misbehaviour (malformed-frame limit), with the reason. */
  readonly oopses: { domain: string; reason: string }[] = [];

  /** Lockstep: domains' clocks read the kernel's virtual time (a worker domain's; see @moat/libc's virtual-clock.ts). */
  private readonly lockstep: boolean;

  /** `joining`: a lockstep machine whose worker this one shares (Network does this for every machine of a lockstep run). */
  constructor(options: MachineOptions = {}, joining?: Machine) {
    guardHostInspector();
    this.name = options.name ?? 'machine';
    this.lockstep = !!options.lockstep;
    const { name: _name, ...kernelOptions } = options;
    const workerData: KernelWorkerData = { ...kernelOptions, machineName: this.name };
    if (joining) {
      this.worker = joining.worker;
      this.ready = this.worker.request({ op: 'addMachine', options: workerData });
      this.ready.catch(() => undefined); // surfaces on the machine's first request
    } else {
      this.worker = new KernelWorker(workerData);
      this.ready = Promise.resolve();
    }
    this.worker.use(this.name, (m: KernelEvent) => {
      if (m.event === 'kill') return void this.domains.get(m.domain)?.kill(m.reason);
      this.oopses.push({ domain: m.domain, reason: m.reason });
      void this.domains.get(m.domain)?.kill(`kernel oops: ${m.reason}`);
    });
  }

  /** Starts a domain in its own worker (or child process), attached to this machine's kernel. */
  async spawn(spec: DomainSpec): Promise<DomainHandle> {
    if (this.domains.has(spec.name)) throw new Error(`domain ${spec.name} already exists on ${this.name}`);
    const isolation = spec.isolation ?? 'worker';
    if (isolation !== 'worker' && isolation !== 'process') throw new Error(`domain ${spec.name}: isolation must be 'worker' or 'process', not ${JSON.stringify(isolation)}`);
    if (spec.allowFsRead && isolation !== 'process') throw new Error(`domain ${spec.name}: allowFsRead applies to isolation 'process' only (a worker reads what the host can)`);
    const program = spec.program instanceof URL ? spec.program.href : pathToFileURL(spec.program).href;
    const init = { name: spec.name, program, args: spec.args ?? null };
    // A process domain's options are checked before the kernel hears of it.
    const plan = isolation === 'process' ? planProcessDomain(init, spec.resourceLimits, spec.allowFsRead) : undefined;
    const { port1: kernelEnd, port2: domainEnd } = new MessageChannel();
    // The wake-up word and the reply slot of blocking calls (CHANNEL_SIGNAL_BYTES in @moat/abi), and for a worker
    // outside lockstep the send ring of its stream writes (RING_SIGNAL_BYTES): a process domain's libc writes none.
    const signal = new SharedArrayBuffer(plan || this.lockstep ? CHANNEL_SIGNAL_BYTES : RING_SIGNAL_BYTES);
    await this.control({ op: 'attach', name: spec.name, port: kernelEnd, signal, limits: spec.limits, watchdogMs: spec.watchdogMs, faults: spec.faults, reportsRest: this.lockstep && !plan }, [kernelEnd]);
    let runner: DomainRunner;
    if (plan) runner = new ProcessRunner(plan, domainEnd);
    else {
      const workerData: DomainWorkerData = { ...init, port: domainEnd, signal, ...(this.lockstep ? { lockstep: true } : {}) };
      runner = workerRunner(
        new Worker(fileURLToPath(DOMAIN_RUNTIME_URL), {
          workerData,
          transferList: [domainEnd],
          resourceLimits: spec.resourceLimits,
          // Domains get no stdin and no environment of the host's.
          env: {},
          stdin: false,
        }),
      );
    }
    const handle = new DomainHandle(spec.name, runner, (reason, status) => {
      const restartAfterMs = spec.restartAfterMs?.(status);
      return this.control({ op: 'detach', name: spec.name, reason, restartAfterMs }).catch(() => undefined) as Promise<DomainStats | undefined>;
    });
    this.domains.set(spec.name, handle);
    // Once released, the name is free again: a supervisor may start the domain anew.
    void handle.outcome.then(() => {
      if (this.domains.get(spec.name) === handle) this.domains.delete(spec.name);
    });
    return handle;
  }

  /** Connects one of the machine's interfaces to a wire (see `Network`). */
  async wire(iface: string, wire: WireSpec): Promise<void> {
    await this.control({ op: 'wire', iface, wire }, wire.kind === 'sim' ? [wire.port] : []);
  }

  /** @internal Lockstep: joins an interface to another machine's, in the same worker, by a simulated link (Network.link). */
  async linkInWorker(iface: string, peer: Machine, peerIface: string, faults: LinkFaults, seeds: [number, number]): Promise<void> {
    if (peer.worker !== this.worker) throw new Error(`${this.name} and ${peer.name} are not in one kernel worker`);
    await Promise.all([this.ready, peer.ready]);
    await this.worker.request({ op: 'link', ends: [{ machine: this.name, iface }, { machine: peer.name, iface: peerIface }], faults, seeds });
  }

  stats(): Promise<KernelStats> {
    return this.control({ op: 'stats' }) as Promise<KernelStats>;
  }

  /** Makes this machine's kernel refuse `count` buffer allocations from its `at`th next one on. */
  async failAllocations(fault: AllocationFault): Promise<void> {
    await this.control({ op: 'poolFault', ...fault });
  }

  /**
   * Plans a fault for a running domain (see @moat/kernel's faults.ts): kill,
   * throw, exit, hang or run out of memory, at its Nth call or after a delay.
   */
  async injectFault(name: string, fault: FaultRequest): Promise<void> {
    await this.control({ op: 'fault', name, ...fault });
  }

  /**
   * Lockstep only: announces domains the host will attach to this machine
   * (at once, or once another domain logs a line matching `after.log`: the
   * clock does not pass the point where one is due until it has attached),
   * and which domains the run waits for (once they have all ended, on every
   * machine, the clock stops for the end of the run).
   */
  async expect(attaches: { name: string; after?: { domain: string; log: string } }[], awaited?: string[]): Promise<void> {
    await this.control({ op: 'expect', attaches, awaited });
  }

  /** Lockstep only: a domain announced with `expect` will not attach (it could not start). */
  async cancelAttach(name: string): Promise<void> {
    await this.control({ op: 'cancelAttach', name });
  }

  /** Lockstep only: stops the clock and the serving of every kernel in the worker, before the host kills the domains left. */
  async hold(): Promise<void> {
    await this.control({ op: 'hold' });
  }

  /** The kernel's event trace so far; empty unless the machine was made with `trace: true` (collectTimeline merges machines'). */
  timeline(): Promise<KernelTimeline> {
    return this.control({ op: 'timeline' }) as Promise<KernelTimeline>;
  }

  /** Kills every domain still running and stops the kernel (and its worker, once no machine of it is left). */
  async shutdown(): Promise<void> {
    await Promise.all([...this.domains.values()].map((d) => d.kill('machine shutdown')));
    if (!this.worker.error) await this.control({ op: 'shutdown' }).catch(() => undefined);
    await this.worker.release(this.name);
  }

  private async control(req: KernelRequest, transfer: TransferListItem[] = []): Promise<unknown> {
    try {
      await this.ready;
      return await this.worker.request({ ...req, machine: this.name } as KernelRequest, transfer);
    } catch (err) {
      throw this.worker.error ? new Error(`kernel of ${this.name} died: ${this.worker.error.message}`) : err;
    }
  }
}
