/**
 * Scenarios as data: `defineScenario({...})` declares machines, links,
 * domains (program, isolation, quotas, restart policy), faults and the
 * expectations the run is judged by, checks the declaration at once (an
 * error names the field and the reason), and returns an entry the `moat`
 * command can run by name or from a file.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { FAULT_KINDS, type KernelStats } from '@moat/kernel';
import { DEFAULT_LINK_FAULTS, validateLinkFaults, type LinkFaults } from '@moat/netstack';
import type { DomainOutcome, DomainSpec } from './machine.js';
import type { ScenarioReport, Verdict } from './report.js';

const Name = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'letters, digits, _ . - (at most 64)' });
const Ms = Type.Number({ minimum: 0, maximum: 86_400_000 });

const InterfaceSchema = Type.Object(
  {
    name: Name,
    addr: Type.String({ pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$', description: 'an IPv4 address with its prefix, e.g. 10.0.0.1/24' }),
    mac: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$' })),
    mtu: Type.Optional(Type.Integer({ minimum: 68, maximum: 65535 })),
  },
  { additionalProperties: false },
);

const MachineSchema = Type.Object(
  {
    name: Name,
    interfaces: Type.Optional(Type.Array(InterfaceSchema, { maxItems: 16 })),
    gateway: Type.Optional(Type.String()),
    /** Bytes of the kernel's packet-buffer pool (default 64 MiB); small, to make exhaustion cheap. */
    poolBytes: Type.Optional(Type.Integer({ minimum: 65536, maximum: 1 << 30 })),
    /** Its kernel's pool refuses `count` allocations from its `at`th on (1 = its first): every caller's failure path runs. */
    allocationFaults: Type.Optional(
      Type.Array(Type.Object({ at: Type.Integer({ minimum: 1 }), count: Type.Integer({ minimum: 1 }) }, { additionalProperties: false })),
    ),
  },
  { additionalProperties: false },
);

const LinkSchema = Type.Object(
  {
    /** The two interfaces it joins, as 'machine.interface'. */
    between: Type.Tuple([Type.String(), Type.String()]),
    faults: Type.Optional(Type.Record(Type.String(), Type.Unknown())), // checked by the stack's own validateLinkFaults
  },
  { additionalProperties: false },
);

const RestartSchema = Type.Object(
  {
    /** OTP's temporary, transient and permanent children: never, after a failure (not a normal return), always. */
    when: Type.Union([Type.Literal('never'), Type.Literal('on-failure'), Type.Literal('always')]),
    /** Restarts at most this many times, then leaves the domain down. */
    max: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    /** Waits this long before the first restart, doubling each time (bounded by 30 s). */
    backoffMs: Type.Optional(Ms),
  },
  { additionalProperties: false },
);

const DomainSchema = Type.Object(
  {
    name: Name,
    /** What the report calls it (e.g. 'OTA updater'). */
    role: Type.Optional(Type.String({ maxLength: 200 })),
    machine: Name,
    /** Path or file URL of the program module. */
    program: Type.Unsafe<string | URL>(Type.Any()), // checked by hand: a non-empty string or a URL
    /** Its arguments, or a function of the run's seed that makes them. */
    args: Type.Optional(Type.Unknown()),
    isolation: Type.Optional(Type.Union([Type.Literal('worker'), Type.Literal('process')])),
    limits: Type.Optional(
      Type.Object(
        {
          maxHandles: Type.Optional(Type.Integer({ minimum: 0, maximum: 65536 })),
          maxBufferBytes: Type.Optional(Type.Integer({ minimum: 0 })),
          maxPendingCalls: Type.Optional(Type.Integer({ minimum: 0, maximum: 65536 })),
          /** Packet-buffer bytes kept for this domain alone, whatever its neighbours take. */
          reservedBufferBytes: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** V8 heap limit of the domain, in MB: running out ends the domain, not the host. */
    heapMb: Type.Optional(Type.Integer({ minimum: 4, maximum: 16384 })),
    restart: Type.Optional(RestartSchema),
    /** Start once this earlier domain has logged a line matching `log` (a regular expression). */
    startAfter: Type.Optional(Type.Object({ domain: Name, log: Type.String({ minLength: 1 }) }, { additionalProperties: false })),
    /** The kernel has it killed once it runs this long with no syscall in the kernel (a hang), from its first syscall on. */
    watchdogMs: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 86_400_000 })),
    /** Whether the run waits for it to end (default true; false for servers that serve until the run ends). */
    awaited: Type.Optional(Type.Boolean()),
    /** When the run is over, how long it may still take to end on its own before it is killed (default 0). */
    shutdownMs: Type.Optional(Ms),
  },
  { additionalProperties: false },
);

const FaultSchema = Type.Object(
  {
    domain: Name,
    /** kill: the host kills it; throw, exit, hang, oom: delivered as the reply to one of its calls, libc acts on it. */
    kind: Type.Union(FAULT_KINDS.map((k) => Type.Literal(k))),
    /** When: this long after the domain started (at its next call, for all but kill)... */
    afterMs: Type.Optional(Ms),
    /** ...or at its Nth syscall (1 = its first). */
    atSyscall: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

const ExpectationSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    check: Type.Function([Type.Any()], Type.Any()),
  },
  { additionalProperties: false },
);

const ScenarioSchema = Type.Object(
  {
    name: Name,
    description: Type.String({ minLength: 1 }),
    machines: Type.Array(MachineSchema, { minItems: 1, maxItems: 64 }),
    links: Type.Optional(Type.Array(LinkSchema)),
    domains: Type.Array(DomainSchema, { minItems: 1, maxItems: 256 }),
    faults: Type.Optional(Type.Array(FaultSchema)),
    expect: Type.Optional(Type.Array(ExpectationSchema)),
    /** The run fails, and every domain is stopped, after this long (default 60 s). */
    timeoutMs: Type.Optional(Ms),
    /** The machine whose kernel the report shows (default: the first). */
    reportMachine: Type.Optional(Name),
    /** Why its verdicts need the real clock (they judge latencies or rates): campaigns and replays then run it on the real clock unless asked for lockstep. */
    realTime: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

/** Arguments a domain's `args` function gets. */
export interface ArgsContext {
  seed: number;
}

type Declared<T extends TSchema> = Static<T>;
export type MachineDefinition = Declared<typeof MachineSchema>;
export type DomainDefinition = Omit<Declared<typeof DomainSchema>, 'args'> & { args?: unknown | ((ctx: ArgsContext) => unknown) };
export type FaultDefinition = Declared<typeof FaultSchema>;
export interface LinkDefinition {
  between: [string, string];
  faults?: Partial<LinkFaults>;
}
export interface Expectation {
  name: string;
  check(run: ScenarioRun): boolean | { pass: boolean; detail: string };
}

export interface ScenarioDefinition {
  name: string;
  description: string;
  machines: MachineDefinition[];
  links?: LinkDefinition[];
  domains: DomainDefinition[];
  faults?: FaultDefinition[];
  expect?: Expectation[];
  timeoutMs?: number;
  reportMachine?: string;
  /**
   * Why the verdicts need the real clock (they judge latencies or rates,
   * which a virtual clock makes 0): `moat campaign` and `moat replay` then run
   * the scenario on the real clock unless --lockstep is given.
   */
  realTime?: string;
}

/** What an expectation sees of a finished run. */
export interface ScenarioRun {
  seed: number;
  /** The last outcome of each domain, by name. */
  outcomes: Record<string, DomainOutcome>;
  /** Every life of each domain, in order (more than one when it was restarted). */
  lives: Record<string, DomainOutcome[]>;
  /** Each machine's kernel at the end, by machine name. */
  kernels: Record<string, KernelStats>;
  timedOut: boolean;
}

export interface RunOptions {
  seed?: number;
  /** Write a pcap file per interface into this folder. */
  captureDir?: string;
  /** Faults besides the scenario's own (`moat run --fault`), checked as the scenario's are. */
  faults?: AnyFaultDefinition[];
  /**
   * Run deterministically (docs/scenarios.md, "Lockstep"): every kernel of
   * the run in one worker, serving domains in a fixed order on one virtual
   * clock, so two runs of a seed give the same event log (not for domains
   * that change their frames from another thread, wait on timers of their
   * own, or run as child processes with async calls).
   */
  lockstep?: boolean;
}

/** Allocation failures in a machine's kernel (see MachineDefinition.allocationFaults). */
export interface AllocationFaultDefinition {
  machine: string;
  kind: 'alloc';
  at: number;
  count: number;
}

export type AnyFaultDefinition = FaultDefinition | AllocationFaultDefinition;

/**
 * A fault as the command line gives it: `domain:kind@N` (at its Nth syscall),
 * `domain:kind@Tms` (T ms after it started), or `machine:alloc@N` /
 * `machine:alloc@NxM` (its kernel's Nth buffer allocation fails, or M of them
 * from the Nth on); e.g. `third-party:oom@100`, `device:alloc@50x10`.
 */
export function parseFaultSpec(spec: string): AnyFaultDefinition {
  const m = /^([A-Za-z0-9_.-]+):([a-z]+)@(\d+)(ms|x\d+)?$/.exec(spec.trim());
  const usage = `expected domain:kind@N (at its Nth syscall), domain:kind@Tms (after T ms) with kind one of ${FAULT_KINDS.join(', ')}, or machine:alloc@N[xM]`;
  if (!m) throw new Error(`fault '${spec}': ${usage}`);
  const [, target, kind, n, suffix] = m as unknown as [string, string, string, string, string | undefined];
  const value = Number(n);
  if (kind === 'alloc') {
    if (suffix === 'ms') throw new Error(`fault '${spec}': an allocation fault counts allocations, not time`);
    return { machine: target, kind: 'alloc', at: value, count: suffix ? Number(suffix.slice(1)) : 1 };
  }
  if (!(FAULT_KINDS as readonly string[]).includes(kind)) throw new Error(`fault '${spec}': unknown kind '${kind}' (${FAULT_KINDS.join(', ')}, alloc)`);
  if (suffix && suffix !== 'ms') throw new Error(`fault '${spec}': ${usage}`);
  const k = kind as FaultDefinition['kind'];
  return suffix === 'ms' ? { domain: target, kind: k, afterMs: value } : { domain: target, kind: k, atSyscall: value };
}

/** The definition with extra faults, checked again (a fault naming an unknown domain or machine is refused by field). */
export function withFaults(definition: ScenarioDefinition, extra: AnyFaultDefinition[] | undefined): ScenarioDefinition {
  if (!extra?.length) return definition;
  const domainFaults = extra.filter((f): f is FaultDefinition => f.kind !== 'alloc');
  const allocFaults = extra.filter((f): f is AllocationFaultDefinition => f.kind === 'alloc');
  for (const f of allocFaults) {
    if (!definition.machines.some((m) => m.name === f.machine)) throw new ScenarioError(`'${definition.name}'`, 'faults', `no machine named '${f.machine}' for an allocation fault`);
  }
  const combined = {
    ...definition,
    machines: definition.machines.map((m) => {
      const mine = allocFaults.filter((f) => f.machine === m.name).map(({ at, count }) => ({ at, count }));
      return mine.length ? { ...m, allocationFaults: [...(m.allocationFaults ?? []), ...mine] } : m;
    }),
    faults: [...(definition.faults ?? []), ...domainFaults],
  };
  checkScenario(combined);
  return combined;
}

/** A checked scenario: what `moat run`, `replay` and `campaign` take. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly definition: ScenarioDefinition;
  run(options?: RunOptions): Promise<ScenarioReport>;
}

/** A scenario file's mistake: `field` says where (e.g. `domains[1].restart.when`). */
export class ScenarioError extends Error {
  constructor(
    readonly scenario: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`scenario ${scenario}: ${field ? `${field}: ` : ''}${reason}`);
    this.name = 'ScenarioError';
  }
}

/** Checks a scenario declaration and returns it ready to run. Throws ScenarioError on the first mistake. */
export function defineScenario(definition: ScenarioDefinition): Scenario {
  checkScenario(definition);
  return {
    name: definition.name,
    description: definition.description,
    definition,
    run: async (options = {}) => (await import('./scenario-runner.js')).runScenario(definition, options),
  };
}

/** The checks of defineScenario, for callers that build definitions at run time. */
export function checkScenario(definition: unknown): asserts definition is ScenarioDefinition {
  const named = (definition as { name?: unknown })?.name;
  const label = typeof named === 'string' && named ? `'${named}'` : '(unnamed)';
  if (typeof definition !== 'object' || definition === null) throw new ScenarioError(label, '', 'a scenario must be an object');
  const first = Value.Errors(ScenarioSchema, definition).First();
  if (first) throw new ScenarioError(label, fieldPath(first.path), describe(first.schema, first.value, first.message));
  const def = definition as ScenarioDefinition;
  const fail = (field: string, reason: string): never => {
    throw new ScenarioError(label, field, reason);
  };
  const machines = new Map<string, MachineDefinition>();
  def.machines.forEach((m, i) => {
    if (machines.has(m.name)) fail(`machines[${i}].name`, `'${m.name}' is declared twice`);
    machines.set(m.name, m);
  });
  const interfaceOf = (end: string, field: string) => {
    const [machine, iface, ...rest] = end.split('.');
    const m = machines.get(machine ?? '');
    if (!m || !iface || rest.length > 0) return fail(field, `'${end}' is not 'machine.interface' of a declared machine`);
    if (!m.interfaces?.some((x) => x.name === iface)) fail(field, `machine '${machine}' has no interface '${iface}'`);
  };
  const linked = new Set<string>();
  (def.links ?? []).forEach((l, i) => {
    l.between.forEach((end, j) => {
      interfaceOf(end, `links[${i}].between[${j}]`);
      if (linked.has(end)) fail(`links[${i}].between[${j}]`, `'${end}' is already linked`);
      linked.add(end);
    });
    for (const key of Object.keys(l.faults ?? {})) {
      if (!(key in DEFAULT_LINK_FAULTS)) fail(`links[${i}].faults.${key}`, `unknown fault (known: ${Object.keys(DEFAULT_LINK_FAULTS).join(', ')})`);
    }
    const problems = validateLinkFaults({ ...DEFAULT_LINK_FAULTS, ...l.faults });
    if (problems.length > 0) fail(`links[${i}].faults`, problems.join('; '));
  });
  const domains = new Set<string>();
  def.domains.forEach((d, i) => {
    if (!((typeof d.program === 'string' && d.program.length > 0) || d.program instanceof URL)) fail(`domains[${i}].program`, 'expected a module path or file URL');
    if (domains.has(d.name)) fail(`domains[${i}].name`, `'${d.name}' is declared twice`);
    if (!machines.has(d.machine)) fail(`domains[${i}].machine`, `no machine named '${d.machine}' (declared: ${[...machines.keys()].join(', ')})`);
    if (d.startAfter) {
      if (!domains.has(d.startAfter.domain)) fail(`domains[${i}].startAfter.domain`, `'${d.startAfter.domain}' must be a domain declared before this one`);
      try {
        new RegExp(d.startAfter.log);
      } catch (err) {
        fail(`domains[${i}].startAfter.log`, `not a regular expression: ${(err as Error).message}`);
      }
    }
    domains.add(d.name);
  });
  (def.faults ?? []).forEach((f, i) => {
    const target = def.domains.find((d) => d.name === f.domain);
    if (!target) return fail(`faults[${i}].domain`, `no domain named '${f.domain}'`);
    if ((f.afterMs === undefined) === (f.atSyscall === undefined)) fail(`faults[${i}]`, 'give exactly one of afterMs and atSyscall');
    if (f.kind === 'oom' && !target.heapMb) fail(`faults[${i}].kind`, `'oom' needs the domain's heapMb: an unbounded heap would take the host's memory`);
  });
  if (def.reportMachine !== undefined && !machines.has(def.reportMachine)) fail('reportMachine', `no machine named '${def.reportMachine}'`);
}

/** TypeBox's '/domains/1/restart/when' as 'domains[1].restart.when'. */
function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

/** A reason a person can act on: the allowed values or the bounds, and what was given. */
function describe(schema: TSchema, value: unknown, message: string): string {
  const given = value === undefined ? 'nothing' : JSON.stringify(value)?.slice(0, 80) ?? String(value);
  const literals = (schema.anyOf as TSchema[] | undefined)?.filter((s) => 'const' in s).map((s) => JSON.stringify(s.const));
  if (literals?.length) return `expected one of ${literals.join(', ')}, got ${given}`;
  if (schema.description) return `expected ${schema.description}, got ${given}`;
  if (message.includes('Unexpected property')) return 'unknown field (is it misspelt?)';
  return `${message.toLowerCase()}, got ${given}`;
}

/** The run's verdicts: the scenario's own expectations, then the kernel's survival, which every scenario is judged by. */
export function judgeRun(def: ScenarioDefinition, run: ScenarioRun): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const e of def.expect ?? []) {
    try {
      const r = e.check(run);
      verdicts.push(typeof r === 'boolean' ? { name: e.name, pass: r, detail: r ? 'holds' : 'does not hold' } : { name: e.name, ...r });
    } catch (err) {
      verdicts.push({ name: e.name, pass: false, detail: `the check threw: ${(err as Error)?.message ?? err}` });
    }
  }
  const kernels = Object.entries(run.kernels);
  const errors = kernels.reduce((n, [, k]) => n + k.internalErrors, 0);
  const leaks = kernels.flatMap(([, k]) => k.leaks);
  verdicts.push({
    name: 'Kernels survived, nothing leaked',
    pass: errors === 0 && leaks.length === 0,
    detail: `${kernels.length} kernel(s): ${errors} internal errors, ${leaks.length} leaks${leaks.length ? ` (${leaks.slice(0, 3).join('; ')})` : ''}`,
  });
  if (run.timedOut) verdicts.push({ name: 'Finished in time', pass: false, detail: `stopped after ${def.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` });
  return verdicts;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/** What Machine.spawn is given for a declared domain, with the faults its kernel is to deliver. */
export function domainSpec(d: DomainDefinition, seed: number, faults: FaultDefinition[] = []): DomainSpec {
  return {
    name: d.name,
    program: d.program,
    args: typeof d.args === 'function' ? (d.args as (ctx: ArgsContext) => unknown)({ seed }) : d.args,
    limits: d.limits,
    isolation: d.isolation,
    resourceLimits: d.heapMb ? { maxOldGenerationSizeMb: d.heapMb } : undefined,
    watchdogMs: d.watchdogMs,
    faults: faults.map((f) => ({ kind: f.kind, atCall: f.atSyscall, afterMs: f.afterMs })),
  };
}
