/**
 * A simulated machine as the host sees it: one kernel worker and the domain
 * workers attached to it. The host only wires and observes; it keeps no
 * kernel state. Each domain gets its channel (a MessagePort whose other end
 * the kernel holds) and a wake-up word, and nothing else.
 */
import { MessageChannel, Worker, type ResourceLimits } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KERNEL_WORKER_URL, type WireSpec, type ControlReply, type ControlRequest, type DomainStats, type KernelStats, type KernelWorkerData, type Limits } from '@moat/kernel';
import { DOMAIN_RUNTIME_URL, type DomainEvent, type DomainWorkerData } from '@moat/libc';

type DistributiveOmit<T, K extends keyof any> = T extends unknown ? Omit<T, K> : never;

export interface DomainSpec {
  name: string;
  /** Path or file URL of the program module (its default export is the program). */
  program: string | URL;
  args?: unknown;
  limits?: Partial<Limits>;
  /** V8 heap limits of the domain's worker: running out ends the domain, not the host. */
  resourceLimits?: ResourceLimits;
}

export type DomainStatus = 'returned' | 'threw' | 'exited' | 'out-of-memory' | 'killed';

export interface DomainOutcome {
  name: string;
  status: DomainStatus;
  /** What the program returned (status 'returned'). */
  value?: unknown;
  /** The last value it published before it ended. */
  published?: unknown;
  /** The error message (status 'threw' or 'out-of-memory'), or the kill reason. */
  error?: string;
  exitCode?: number;
  logs: string[];
  /** The kernel's final accounting of the domain, taken after it released everything. */
  final?: DomainStats;
}

export class DomainHandle {
  readonly logs: string[] = [];
  /** The last value the program published (kept even if it later crashed). */
  published: unknown;
  /** Settles when the domain's worker has ended and the kernel has released it. */
  readonly outcome: Promise<DomainOutcome>;
  private killReason: string | undefined;

  constructor(
    readonly name: string,
    private readonly worker: Worker,
    release: (reason: string) => Promise<DomainStats | undefined>,
  ) {
    let value: unknown;
    let returned = false;
    let error: { message: string; oom: boolean } | undefined;
    worker.on('message', (e: DomainEvent) => {
      if (e.event === 'log') this.logs.push(e.message);
      else if (e.event === 'publish') this.published = e.value;
      else if (e.event === 'result') (value = e.value), (returned = true);
    });
    worker.on('error', (err: Error & { code?: string }) => {
      error = { message: err?.message ?? String(err), oom: err?.code === 'ERR_WORKER_OUT_OF_MEMORY' };
    });
    this.outcome = new Promise((resolve) => {
      worker.once('exit', async (exitCode) => {
        const status: DomainStatus = this.killReason
          ? 'killed'
          : error?.oom
            ? 'out-of-memory'
            : error
              ? 'threw'
              : returned
                ? 'returned'
                : 'exited';
        const final = await release(this.killReason ?? error?.message ?? (returned ? 'returned' : `exit ${exitCode}`));
        resolve({
          name,
          status,
          value,
          published: this.published,
          error: this.killReason ?? error?.message,
          exitCode,
          logs: this.logs,
          final,
        });
      });
    });
  }

  /** Resolves with the first log line (already written or still to come) that matches. */
  waitForLog(match: RegExp): Promise<string> {
    const seen = this.logs.find((l) => match.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const onMessage = (e: DomainEvent) => {
        if (e.event === 'log' && match.test(e.message)) done(() => resolve(e.message));
      };
      const onExit = () => done(() => reject(new Error(`${this.name} ended before logging ${match}`)));
      const done = (settle: () => void) => {
        this.worker.off('message', onMessage);
        this.worker.off('exit', onExit);
        settle();
      };
      this.worker.on('message', onMessage);
      this.worker.once('exit', onExit);
    });
  }

  /** Stops the domain's worker at once (as a kill signal would). */
  async kill(reason = 'killed'): Promise<DomainOutcome> {
    this.killReason ??= reason;
    await this.worker.terminate();
    return this.outcome;
  }
}

export interface MachineOptions extends Omit<KernelWorkerData, 'machineName'> {
  name?: string;
}

export class Machine {
  readonly name: string;
  private readonly kernel: Worker;
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private nextId = 1;
  private readonly domains = new Map<string, DomainHandle>();
  /** Domains the kernel reported for misbehaviour (malformed-frame limit), with the reason. */
  readonly oopses: { domain: string; reason: string }[] = [];
  private kernelError: Error | undefined;

  constructor(options: MachineOptions = {}) {
    this.name = options.name ?? 'machine';
    const { name: _name, ...kernelOptions } = options;
    const workerData: KernelWorkerData = { ...kernelOptions, machineName: this.name };
    this.kernel = new Worker(KERNEL_WORKER_URL, { workerData });
    this.kernel.on('message', (m: ControlReply) => {
      if ('event' in m) {
        this.oopses.push({ domain: m.domain, reason: m.reason });
        void this.domains.get(m.domain)?.kill(`kernel oops: ${m.reason}`);
        return;
      }
      const call = this.calls.get(m.id);
      this.calls.delete(m.id);
      if (m.error !== undefined) call?.reject(new Error(m.error));
      else call?.resolve(m.value);
    });
    this.kernel.on('error', (err) => {
      this.kernelError = err;
      for (const c of this.calls.values()) c.reject(new Error(`kernel of ${this.name} died: ${err.message}`));
      this.calls.clear();
    });
  }

  /** Starts a domain in its own worker, attached to this machine's kernel. */
  async spawn(spec: DomainSpec): Promise<DomainHandle> {
    if (this.domains.has(spec.name)) throw new Error(`domain ${spec.name} already exists on ${this.name}`);
    const { port1: kernelEnd, port2: domainEnd } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    await this.control({ op: 'attach', name: spec.name, port: kernelEnd, signal, limits: spec.limits }, [kernelEnd]);
    const program = spec.program instanceof URL ? spec.program.href : pathToFileURL(spec.program).href;
    const workerData: DomainWorkerData = { name: spec.name, program, args: spec.args ?? null, port: domainEnd, signal };
    const worker = new Worker(fileURLToPath(DOMAIN_RUNTIME_URL), {
      workerData,
      transferList: [domainEnd],
      resourceLimits: spec.resourceLimits,
      // Domains get no stdin and no environment of the host's.
      env: {},
      stdin: false,
    });
    const handle = new DomainHandle(spec.name, worker, (reason) =>
      this.control({ op: 'detach', name: spec.name, reason }).catch(() => undefined) as Promise<DomainStats | undefined>,
    );
    this.domains.set(spec.name, handle);
    return handle;
  }

  /** Connects one of the machine's interfaces to a wire (see `Network`). */
  async wire(iface: string, wire: WireSpec): Promise<void> {
    await this.control({ op: 'wire', iface, wire }, wire.kind === 'sim' ? [wire.port] : []);
  }

  stats(): Promise<KernelStats> {
    return this.control({ op: 'stats' }) as Promise<KernelStats>;
  }

  /** Kills every domain still running and stops the kernel worker. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.domains.values()].map((d) => d.kill('machine shutdown')));
    if (!this.kernelError) await this.control({ op: 'shutdown' }).catch(() => undefined);
    await this.kernel.terminate();
  }

  private control(req: DistributiveOmit<ControlRequest, 'id'>, transfer: import('node:worker_threads').TransferListItem[] = []): Promise<unknown> {
    if (this.kernelError) return Promise.reject(new Error(`kernel of ${this.name} died: ${this.kernelError.message}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.kernel.postMessage({ ...req, id }, transfer);
    });
  }
}
