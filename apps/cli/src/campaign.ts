/**
 * Campaigns: many seeds of one scenario, in parallel on a piscina pool, each
 * failure classed (the verdict that failed, a crash, or a timeout) with the
 * command that replays it. Usable without the CLI: runCampaign() resolves to
 * the summary; it rejects only on bad options or scenario, before any thread
 * starts, or with an error thrown by one of its callbacks (after stopping).
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { clip, faultsForSeed, STARTED, type SeedResult, type SeedTask, type StartedMessage } from './campaign-protocol.js';
import { resolveScenario } from './resolve-scenario.js';

export type { ErrorClass, SeedResult } from './campaign-protocol.js';

export const DEFAULT_TIMEOUT_MS = 120_000;

/** Campaign options out of range. */
export class CampaignOptionError extends RangeError {
  override name = 'CampaignOptionError';
}

export interface CampaignOptions {
  /** A scenario name or the path of a scenario module (see resolveScenario). */
  scenario: string;
  /** How many seeds: firstSeed .. firstSeed + seeds - 1. */
  seeds: number;
  /** Pool threads, each running one seed at a time. */
  jobs: number;
  firstSeed?: number;
  /** Longest one seed may run before its thread is terminated and the seed counted as 'timeout'. */
  timeoutMs?: number;
  /** Fault specs added to every seed's run (`{seed}` is replaced by the seed), as `moat run --fault` takes them. */
  faults?: string[];
  /**
   * The clock every seed runs on, which the replay commands name: 'lockstep' (RunOptions.lockstep: each replay
   * repeats its seed's event log) or 'realtime'; left out, the real clock and nothing said (a module scenario).
   */
  clock?: 'lockstep' | 'realtime';
  /** Each seed's result as it arrives (done and failed include it). */
  onResult?(result: SeedResult, progress: { done: number; failed: number; total: number }): void;
  /** A pool thread began running this seed. */
  onStart?(seed: number): void;
  /** Stop: seeds not yet started are cancelled; running ones may finish (or time out). */
  signal?: AbortSignal;
  /** Stop now: running seeds are terminated too. */
  forceSignal?: AbortSignal;
}

export interface FailureGroup {
  /** The failed verdict's name, or 'crash' or 'timeout'. */
  class: string;
  kind: 'verdict' | 'crash' | 'timeout';
  count: number;
  seeds: number[];
}

export interface FailingSeed {
  seed: number;
  classes: string[];
  /** Reproduces this seed. */
  replay: string;
  /** Its event log hash (in lockstep, the replay prints the same). */
  hash?: string;
  failedVerdicts: SeedResult['failedVerdicts'];
  domains: SeedResult['domains'];
  error?: SeedResult['error'];
}

export interface CampaignSummary {
  scenario: string;
  firstSeed: number;
  seeds: number;
  jobs: number;
  timeoutMs: number;
  /** Every seed ran in lockstep (its replay repeats its event log). */
  lockstep?: boolean;
  /** Seeds that produced a result (passed + failed). */
  runs: number;
  passed: number;
  failed: number;
  /** Stopped early (signal): `notRun` seeds were cancelled or terminated and are in no count above. */
  interrupted: boolean;
  notRun: number;
  /** Most frequent first. A seed that failed two verdicts is in both groups. */
  failures: FailureGroup[];
  failedSeeds: number[];
  failing: FailingSeed[];
  wallMs: number;
  /** Runs per second of wall time. */
  perSecond: number;
  /** Per-run wall time over the runs that produced a result. */
  durationMs: { min: number; median: number; max: number } | null;
  /** Errors of pool threads outside any task (e.g. a scenario's stray rejection after its run resolved). */
  threadErrors: string[];
}

/** A word the shell passes through as is, or that word in single quotes. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Heap of each pool thread: a seed's scenario host (its domains and kernels run in threads of their own). */
export const POOL_THREAD_HEAP_MB = 1024;

export function replayCommand(scenario: string, seed: number, faults: readonly string[] = [], clock?: 'lockstep' | 'realtime'): string {
  return `moat replay ${shellQuote(scenario)} --seed ${seed}${faults.map((f) => ` --fault ${shellQuote(f)}`).join('')}${clock ? ` --${clock}` : ''}`;
}

export function classesOf(r: SeedResult): string[] {
  return r.error ? [r.error.class] : r.failedVerdicts.map((v) => v.name);
}

const TASK_FILE = fileURLToPath(new URL('./campaign-task.js', import.meta.url));
/** Abort reasons: which of our own signals stopped a task. */
const TIMEOUT = 'timeout';
const CANCEL = 'cancel';

/** Why a pool thread gave no result. An exit's stack is piscina's own, so only the code is worth showing. */
function threadFailure(err: unknown, previousSeed: number | undefined): string {
  const exit = /^worker exited with code: (-?\d+)/.exec((err as Error)?.message ?? '');
  const what = exit ? `its pool thread exited with code ${exit[1]} during the run` : `its pool thread failed: ${clip(String((err as Error)?.stack ?? err))}`;
  // A run's own exceptions come back as results; this one killed the thread, and async work a
  // previous seed left behind on the same thread can do that too: say so, as a replay may pass.
  return previousSeed === undefined ? what : `${what} (the thread ran seed ${previousSeed} before: its leftover async work may be the cause)`;
}

interface InFlight {
  seed: number;
  abort: AbortController;
  startedAt?: number;
  timer?: NodeJS.Timeout;
  /** The seed the same pool thread ran before this one. */
  previousSeed?: number;
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignSummary> {
  const { seeds, jobs, firstSeed = 1, timeoutMs = DEFAULT_TIMEOUT_MS } = options;
  for (const [name, value, min] of [['seeds', seeds, 1], ['jobs', jobs, 1], ['firstSeed', firstSeed, 0], ['timeoutMs', timeoutMs, 1]] as const) {
    if (!Number.isSafeInteger(value) || value < min) throw new CampaignOptionError(`${name} must be an integer >= ${min}, not ${value}`);
  }
  if (!Number.isSafeInteger(firstSeed + seeds - 1)) throw new CampaignOptionError('firstSeed + seeds is beyond the safe integers');
  // Fail fast, in this thread, with the resolver's message, before any pool thread exists.
  const { ref } = await resolveScenario(options.scenario);

  const started = performance.now();
  const threads = Math.min(jobs, seeds);
  const pool = new Piscina<SeedTask, SeedResult>({
    filename: TASK_FILE,
    minThreads: threads,
    maxThreads: threads,
    // Scenarios keep async work going (their machines' workers, timers) that Atomics.wait
    // would freeze between tasks; tasks take seconds, so the fast path buys nothing.
    atomics: 'disabled',
    // A runaway seed runs out of its thread's heap and fails as 'crash', instead of taking the campaign's memory.
    resourceLimits: { maxOldGenerationSizeMb: POOL_THREAD_HEAP_MB },
  });
  const results: SeedResult[] = [];
  const threadErrors: string[] = [];
  const inFlight = new Map<number, InFlight>();
  let next = firstSeed;
  const end = firstSeed + seeds;
  let stopping = false;
  let failed = 0;
  // A throwing callback stops the campaign; its error is rethrown once the pool is gone.
  let callbackError: { error: unknown } | undefined;
  const guard = (fn: () => void) => {
    try {
      fn();
    } catch (error) {
      callbackError ??= { error };
      stop();
    }
  };
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const settle = (result: SeedResult) => {
    // The summary needs only the seed and duration of a passing run: keep memory small over long campaigns.
    results.push(result.passed ? { seed: result.seed, passed: true, durationMs: result.durationMs, failedVerdicts: [], domains: [] } : result);
    if (!result.passed) failed++;
    const progress = { done: results.length, failed, total: seeds };
    guard(() => options.onResult?.(result, progress));
  };

  /** A thread began the seed: time it from now (`settled`: its result is already here, so no timer). */
  const markStarted = (task: InFlight, settled = false) => {
    if (task.startedAt !== undefined) return;
    task.startedAt = performance.now();
    if (!settled) task.timer = setTimeout(() => task.abort.abort(TIMEOUT), timeoutMs);
    guard(() => options.onStart?.(task.seed));
  };
  // The start notice and the result travel on different ports: a quick seed's result can come
  // first (it is marked started then), and its late notice finds it gone and is dropped.
  const lastSeedOfThread = new Map<number, number>();
  pool.on('message', (m: unknown) => {
    const { [STARTED]: seed, thread } = (m ?? {}) as Partial<StartedMessage>;
    if (typeof seed !== 'number' || typeof thread !== 'number') return;
    const task = inFlight.get(seed);
    if (task) {
      task.previousSeed = lastSeedOfThread.get(thread);
      markStarted(task);
    }
    lastSeedOfThread.set(thread, seed);
  });
  pool.on('error', (err: unknown) => {
    if (threadErrors.length < 10) threadErrors.push(clip(String((err as Error)?.stack ?? err), 500));
  });

  const onFailure = (task: InFlight, err: unknown) => {
    const reason: unknown = task.abort.signal.aborted ? task.abort.signal.reason : undefined;
    if (reason === CANCEL) return; // not run: counted in notRun
    const durationMs = task.startedAt === undefined ? 0 : performance.now() - task.startedAt;
    markStarted(task, true);
    const error =
      reason === TIMEOUT
        ? { class: 'timeout' as const, message: `no result after ${timeoutMs} ms; its thread was terminated` }
        : { class: 'crash' as const, message: threadFailure(err, task.previousSeed) };
    settle({ seed: task.seed, passed: false, durationMs, failedVerdicts: [], domains: [], error });
  };

  const submit = (seed: number) => {
    const task: InFlight = { seed, abort: new AbortController() };
    inFlight.set(seed, task);
    pool
      .run({ scenario: ref, seed, faults: faultsForSeed(options.faults ?? [], seed), lockstep: options.clock === 'lockstep' }, { signal: task.abort.signal })
      .then(
        (result) => {
          markStarted(task, true);
          settle(result);
        },
        (err: unknown) => onFailure(task, err),
      )
      .finally(() => {
        clearTimeout(task.timer);
        inFlight.delete(seed);
        pump();
      });
  };

  // Keep every thread busy with one more seed queued behind it, but never the whole range:
  // memory stays flat however many seeds, and a stop has little to cancel.
  const pump = () => {
    while (!stopping && next < end && inFlight.size < threads * 2) submit(next++);
    if (inFlight.size === 0) finish();
  };

  function stop() {
    stopping = true;
    for (const t of inFlight.values()) if (t.startedAt === undefined) t.abort.abort(CANCEL);
    if (inFlight.size === 0) finish();
  }
  const force = () => {
    stop();
    for (const t of inFlight.values()) t.abort.abort(CANCEL);
  };
  const { signal, forceSignal } = options;
  if (signal?.aborted || forceSignal?.aborted) stopping = true;
  signal?.addEventListener('abort', stop, { once: true });
  forceSignal?.addEventListener('abort', force, { once: true });

  try {
    pump();
    await finished;
  } finally {
    signal?.removeEventListener('abort', stop);
    forceSignal?.removeEventListener('abort', force);
    await pool.destroy();
  }
  if (callbackError) throw callbackError.error;
  const wallMs = performance.now() - started;
  const plan = { firstSeed, seeds, jobs, timeoutMs, ...(options.clock === 'lockstep' ? { lockstep: true } : {}) };
  return summarize(options.scenario, plan, results, { wallMs, interrupted: stopping, threadErrors }, options.faults, options.clock);
}

/** Builds the summary from per-seed results (any order). */
export function summarize(
  scenario: string,
  plan: { firstSeed: number; seeds: number; jobs: number; timeoutMs: number; lockstep?: boolean },
  results: SeedResult[],
  run: { wallMs: number; interrupted: boolean; threadErrors?: string[] },
  faults: readonly string[] = [],
  clock?: 'lockstep' | 'realtime',
): CampaignSummary {
  const sorted = [...results].sort((a, b) => a.seed - b.seed);
  const failing = sorted.filter((r) => !r.passed);
  const groups = new Map<string, FailureGroup>();
  for (const r of failing) {
    for (const c of classesOf(r)) {
      const kind = r.error ? r.error.class : 'verdict';
      const key = `${kind}\0${c}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { class: c, kind, count: 0, seeds: [] }));
      g.count++;
      g.seeds.push(r.seed);
    }
  }
  const durations = sorted.map((r) => r.durationMs).sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    scenario,
    ...plan,
    runs: sorted.length,
    passed: sorted.length - failing.length,
    failed: failing.length,
    interrupted: run.interrupted && sorted.length < plan.seeds,
    notRun: plan.seeds - sorted.length,
    failures: [...groups.values()].sort((a, b) => b.count - a.count || a.class.localeCompare(b.class)),
    failedSeeds: failing.map((r) => r.seed),
    failing: failing.map((r) => ({
      seed: r.seed,
      classes: classesOf(r),
      replay: replayCommand(scenario, r.seed, faultsForSeed(faults, r.seed), clock),
      ...(r.hash ? { hash: r.hash } : {}),
      failedVerdicts: r.failedVerdicts,
      domains: r.domains,
      ...(r.error ? { error: r.error } : {}),
    })),
    wallMs: round(run.wallMs),
    perSecond: run.wallMs > 0 ? Math.round((sorted.length / (run.wallMs / 1000)) * 100) / 100 : 0,
    durationMs: durations.length
      ? { min: round(durations[0]!), median: round(durations[Math.floor((durations.length - 1) / 2)]!), max: round(durations.at(-1)!) }
      : null,
    threadErrors: run.threadErrors ?? [],
  };
}

/** At most this many replay lines in the text summary; JSON lists every failing seed. */
const MAX_REPLAY_LINES = 25;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

const seedList = (seeds: number[], max = 10) =>
  `seed${seeds.length > 1 ? 's' : ''} ${seeds.slice(0, max).join(', ')}${seeds.length > max ? `, … (${seeds.length - max} more)` : ''}`;

const oneLine = (text: string, max = 100) => clip(text.split('\n')[0]!.trim(), max);

/** The terminal form of a campaign summary. */
export function renderCampaignSummary(s: CampaignSummary): string {
  const out: string[] = [];
  const last = s.firstSeed + s.seeds - 1;
  out.push(`Campaign ${s.scenario}: seeds ${s.firstSeed}..${last}, ${plural(s.jobs, 'job')}, timeout ${s.timeoutMs / 1000} s${s.lockstep ? ', lockstep' : ''}`);
  out.push(`${plural(s.runs, 'run')}: ${s.passed} passed, ${s.failed} failed` + (s.interrupted ? ` (interrupted: ${plural(s.notRun, 'seed')} not run)` : ''));
  if (s.failures.length) {
    out.push('', 'Failures by class:');
    const width = Math.max(...s.failures.map((g) => g.class.length));
    for (const g of s.failures) out.push(`  ${g.class.padEnd(width)}  ${String(g.count).padStart(4)}  ${seedList(g.seeds)}`);
    out.push('', 'Replay a failing seed:');
    const width2 = Math.max(...s.failing.slice(0, MAX_REPLAY_LINES).map((f) => f.replay.length));
    for (const f of s.failing.slice(0, MAX_REPLAY_LINES)) {
      const why = f.error ? `${f.error.class}: ${oneLine(f.error.message)}` : f.failedVerdicts.map((v) => `${v.name}: ${oneLine(v.detail, 60)}`).join('; ');
      out.push(`  ${f.replay.padEnd(width2)}  # ${why}`);
    }
    if (s.failing.length > MAX_REPLAY_LINES) out.push(`  … and ${s.failing.length - MAX_REPLAY_LINES} more (--json or --out lists every one)`);
  }
  if (s.threadErrors.length) {
    out.push('', `Pool threads failed outside any run (${s.threadErrors.length}); first: ${oneLine(s.threadErrors[0]!, 200)}`);
  }
  const d = s.durationMs;
  const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  out.push(
    '',
    `Wall time ${sec(s.wallMs)}, ${s.perSecond} scenarios/s` + (d ? ` (per run: min ${sec(d.min)}, median ${sec(d.median)}, max ${sec(d.max)})` : ''),
  );
  out.push(s.failed ? 'Some seeds fail.' : s.interrupted ? 'Every seed that ran passes; the campaign was interrupted.' : 'Every seed passes.');
  return out.join('\n');
}
