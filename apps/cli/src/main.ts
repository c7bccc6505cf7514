#!/usr/bin/env node
/**
 * The `moat` command. Exit codes CI can use: 0 every verdict passed,
 * 1 some verdict failed, 2 bad usage or an error before a report existed
 * (130: a campaign interrupted before any seed failed).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { AnyFaultDefinition, ScenarioDefinition, ScenarioReport } from '@moat/sim';
import { CampaignOptionError, DEFAULT_TIMEOUT_MS, renderCampaignSummary, runCampaign, type CampaignSummary } from './campaign.js';
import { createProgress, type Progress } from './progress.js';
import { resolveScenario, ScenarioError, type ResolvedScenario } from './resolve-scenario.js';

// The scenarios and the stack behind them are imported where a command needs them,
// so --help and usage errors answer at once.
const EXIT_PASS = 0;
const EXIT_FAIL = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

// Each seed already runs a kernel worker per machine and a worker per domain, more than one
// core's worth: a seed per core oversubscribes (measured: ota-udp on 2 cores is slower at 2 jobs than at 1).
const DEFAULT_JOBS = Math.max(1, Math.floor(availableParallelism() / 2));

const SCENARIO_ARG = 'scenario name (see `moat list`), or the path of a .js/.mjs module whose default export is a scenario';

function integer(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

/** A repeatable option's values, in the order given. */
const repeated = (value: string, previous: string[]) => [...previous, value];

const example = (...lines: string[]) => `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** Resolves the scenario argument, or ends the command with the resolver's message and exit code 2. */
async function scenarioOrExit(arg: string): Promise<ResolvedScenario> {
  try {
    return await resolveScenario(arg);
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err;
    console.error(`moat: ${err.message}`);
    process.exit(EXIT_USAGE);
  }
}

interface RunOptions {
  seed: number;
  json?: boolean;
  out?: string;
  capture?: string;
  trace?: string;
  html?: string;
  fault: string[];
  lockstep?: boolean;
  realtime?: boolean;
}

/**
 * The --fault specs, parsed and checked against the scenario's declaration
 * (only a defineScenario scenario has one), or the command ends with exit code 2.
 */
async function faultsOrExit(entry: object, specs: string[]): Promise<AnyFaultDefinition[]> {
  if (specs.length === 0) return [];
  const { parseFaultSpec, withFaults } = await import('@moat/sim');
  const definition = (entry as { definition?: ScenarioDefinition }).definition;
  try {
    if (!definition) throw new Error(`--fault needs a scenario declared with defineScenario; ${(entry as { name?: string }).name ?? 'this one'} is not`);
    const faults = specs.map(parseFaultSpec);
    withFaults(definition, faults);
    return faults;
  } catch (err) {
    console.error(`moat: ${(err as Error).message}`);
    process.exit(EXIT_USAGE);
  }
}

const LOCKSTEP_HELP =
  'run deterministically: every kernel in one worker on a virtual clock, domains served in a fixed order, so a seed gives the same event log hash every time (docs/scenarios.md, "Lockstep")';
const REALTIME_HELP = "run on the real clock, domains served as the OS schedules them (races included; a seed's event log then differs between runs)";

/**
 * Whether to run in lockstep: --lockstep or --realtime if given, else the
 * command's default, which applies to scenarios declared with defineScenario
 * only (a module's own run() cannot run in lockstep) and not declared
 * `realTime`. Bad combinations end the command with exit code 2.
 */
function lockstepOrExit(entry: object, opts: { lockstep?: boolean; realtime?: boolean }, byDefault: boolean): boolean {
  const declared = !!(entry as { definition?: ScenarioDefinition }).definition;
  const fail = (message: string): never => {
    console.error(`moat: ${message}`);
    process.exit(EXIT_USAGE);
  };
  if (opts.lockstep && opts.realtime) fail('--lockstep and --realtime: choose one');
  if (opts.lockstep && !declared) fail(`--lockstep: ${(entry as { name?: string }).name ?? 'this scenario'} cannot run in lockstep: it is not declared with defineScenario`);
  if (opts.realtime) return false;
  // A scenario whose verdicts judge latencies or rates says so (realTime): on a virtual clock they would be 0.
  const realTime = (entry as { definition?: ScenarioDefinition }).definition?.realTime;
  return opts.lockstep === true || (byDefault && declared && !realTime);
}

/** run and replay: one seed of one scenario, its report printed (and written), the exit code from its verdicts. */
async function runOne(arg: string, opts: RunOptions, lockstepByDefault: boolean): Promise<void> {
  const { entry } = await scenarioOrExit(arg);
  const faults = await faultsOrExit(entry, opts.fault);
  const lockstep = lockstepOrExit(entry, opts, lockstepByDefault);
  if (opts.capture) await mkdir(opts.capture, { recursive: true });
  const report: ScenarioReport = await entry.run({ seed: opts.seed, captureDir: opts.capture && resolve(opts.capture), ...(faults.length ? { faults } : {}), ...(lockstep ? { lockstep: true } : {}) });
  const json = JSON.stringify(report, null, 2);
  if (opts.out) await writeFile(opts.out, json + '\n');
  if (opts.trace || opts.html) {
    const { toChromeTrace, renderHtmlReport } = await import('@moat/sim');
    if (opts.trace) await writeFile(opts.trace, JSON.stringify(toChromeTrace(report)) + '\n');
    if (opts.html) await writeFile(opts.html, renderHtmlReport(report));
  }
  if (opts.json) console.log(json);
  else {
    const { renderReport } = await import('@moat/sim');
    // A module's run() may return any shape: only a string hash is printed.
    const hash = report.timeline?.hash;
    console.log(renderReport(report) + (typeof hash === 'string' && hash ? `\nevent log hash: ${hash}` : ''));
  }
  process.exitCode = report.passed ? EXIT_PASS : EXIT_FAIL;
}

interface CampaignCliOptions {
  seeds: number;
  jobs: number;
  firstSeed: number;
  timeoutMs: number;
  json?: boolean;
  out?: string;
  fault: string[];
  lockstep?: boolean;
  realtime?: boolean;
}

async function campaign(arg: string, opts: CampaignCliOptions): Promise<void> {
  const { arg: scenario, entry } = await scenarioOrExit(arg);
  // Checked here with the first seed's values, so a bad spec is a usage error and not every seed's crash.
  const { faultsForSeed } = await import('./campaign-protocol.js');
  await faultsOrExit(entry, faultsForSeed(opts.fault, opts.firstSeed));
  // A declared scenario's seeds run in lockstep unless --realtime, so each replay command repeats its seed exactly.
  const lockstep = lockstepOrExit(entry, opts, true);
  const declared = !!(entry as { definition?: ScenarioDefinition }).definition;
  const stop = new AbortController();
  const force = new AbortController();
  const running = new Set<number>();
  let progress: Progress | undefined;
  const note = (message: string) => (progress ? progress.note(message) : console.error(message));
  // First Ctrl-C: cancel what has not started and let running seeds finish; second: terminate them.
  const onSigint = () => {
    if (!stop.signal.aborted) {
      stop.abort();
      const seeds = [...running].sort((a, b) => a - b);
      note(
        seeds.length
          ? `moat: interrupted; queued seeds cancelled, waiting for ${seeds.length} running (seed ${seeds.join(', ')}); Ctrl-C again to terminate ${seeds.length > 1 ? 'them' : 'it'}`
          : 'moat: interrupted; queued seeds cancelled',
      );
    } else if (!force.signal.aborted) {
      force.abort();
      note('moat: terminating running seeds');
    }
  };
  // Installed before anything is printed: whoever sees the first line may press Ctrl-C.
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint); // as a CI runner stops a job: the same orderly stop, with the partial summary
  if (!opts.json) {
    const threads = Math.min(opts.jobs, opts.seeds);
    console.error(
      `moat: campaign ${scenario}: seeds ${opts.firstSeed}..${opts.firstSeed + opts.seeds - 1} on ${threads} thread${threads === 1 ? '' : 's'}, ` +
        `timeout ${opts.timeoutMs} ms, ${lockstep ? 'lockstep' : 'real time'} (Ctrl-C stops it)`,
    );
  }
  progress = createProgress(opts.json ? 'none' : process.stderr.isTTY ? 'bar' : 'lines', scenario, opts.seeds);
  let summary: CampaignSummary;
  try {
    summary = await runCampaign({
      scenario,
      seeds: opts.seeds,
      jobs: opts.jobs,
      firstSeed: opts.firstSeed,
      timeoutMs: opts.timeoutMs,
      faults: opts.fault,
      clock: declared ? (lockstep ? 'lockstep' : 'realtime') : undefined,
      signal: stop.signal,
      forceSignal: force.signal,
      onStart: (seed) => running.add(seed),
      onResult: (r, p) => {
        running.delete(r.seed);
        progress?.update(p.done, p.failed);
      },
    });
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  const json = JSON.stringify(summary, null, 2);
  if (opts.out) await writeFile(opts.out, json + '\n');
  console.log(opts.json ? json : renderCampaignSummary(summary));
  process.exitCode = summary.failed > 0 ? EXIT_FAIL : summary.interrupted ? EXIT_INTERRUPTED : EXIT_PASS;
}

const program = new Command('moat')
  .description('Design and test isolation in network stacks: run scenarios where protection domains share a kernel and its TCP/IP stack.')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
  .showHelpAfterError()
  .addHelpText(
    'after',
    '\nExit codes: 0 every verdict passed, 1 some verdict failed, 2 bad usage or an error before a report existed,' +
      '\n130 a campaign interrupted (Ctrl-C) before any seed failed.\n' +
      example('moat run ota-isolation --seed 7', 'moat campaign ota-udp --seeds 100 --jobs 2', 'moat replay ota-udp --seed 42'),
  );

program
  .command('list')
  .description('list the scenarios this build knows')
  .option('--json', 'print JSON')
  .addHelpText('after', example('moat list --json'))
  .action(async (opts: { json?: boolean }) => {
    const { SCENARIOS } = await import('@moat/examples');
    if (opts.json) console.log(JSON.stringify(SCENARIOS.map(({ name, description }) => ({ name, description })), null, 2));
    else for (const s of SCENARIOS) console.log(`${s.name}\n  ${s.description}`);
  });

const reportOptions = (cmd: Command) =>
  cmd
    .option('--json', 'print the report as JSON instead of text')
    .option('--out <file>', 'also write the JSON report to this file')
    .option('--capture <dir>', 'write a pcap file per interface of each machine into this folder')
    .option('--trace <file>', 'write the event trace in Chrome trace format (open it in ui.perfetto.dev)')
    .option('--html <file>', 'write a self-contained HTML report (verdicts, domains, timelines, TCP transitions)')
    .option(
      '--fault <spec>',
      'inject a fault, repeatable: domain:kind@N at its Nth syscall, or domain:kind@Tms after T ms (kind: kill, throw, exit, hang, oom); machine:alloc@N[xM] fails its kernel\'s Nth buffer allocation (M of them)',
      repeated,
      [] as string[],
    )
    .option('--lockstep', LOCKSTEP_HELP)
    .option('--realtime', REALTIME_HELP);

reportOptions(
  program
    .command('run')
    .summary('run one scenario and print its report')
    .description('run one scenario and print its report; exits 1 if a verdict fails')
    .argument('<scenario>', SCENARIO_ARG)
    .option('--seed <n>', 'seed for every random choice of the run', integer(0), 1),
)
  .addHelpText('after', example('moat run ota-isolation --seed 3 --capture captures/', 'moat run ota-isolation --html report.html --trace trace.json'))
  .addHelpText('after', '\nA run is on the real clock unless --lockstep.')
  .action((name: string, opts: RunOptions) => runOne(name, opts, false));

reportOptions(
  program
    .command('replay')
    .summary('rerun one seed of a scenario exactly and print its report')
    .description(
      'rerun one seed of a scenario exactly (a failing seed a campaign found) and print its report, with its event log hash when the report has one',
    )
    .argument('<scenario>', SCENARIO_ARG)
    .requiredOption('--seed <n>', 'the seed to replay (required)', integer(0)),
)
  .addHelpText(
    'after',
    '\nA scenario declared with defineScenario replays in lockstep unless --realtime (a module scenario runs on the real clock).' +
      example('moat replay ota-udp --seed 42', 'moat replay ./my-scenario.mjs --seed 7 --json --out seed7.json'),
  )
  .action((name: string, opts: RunOptions) => runOne(name, opts, true));

program
  .command('campaign')
  .summary('run many seeds of a scenario in parallel and summarize the failures')
  .description(
    'run many seeds of a scenario in parallel worker threads and summarize: failures grouped by class (failed verdict, crash, timeout), ' +
      'the failing seeds and the `moat replay` command for each; exits 1 if any seed fails',
  )
  .argument('<scenario>', SCENARIO_ARG)
  .requiredOption('--seeds <n>', 'how many seeds to run (required)', integer(1))
  .option('--jobs <n>', 'seeds run at once, each in its own pool thread (a seed keeps a kernel worker per machine and a worker per domain busy too)', integer(1), DEFAULT_JOBS)
  .option('--first-seed <s>', 'the first seed; the campaign runs S .. S+N-1', integer(0), 1)
  .option('--timeout-ms <ms>', "a seed still running after this long has its thread terminated and fails as 'timeout'", integer(1), DEFAULT_TIMEOUT_MS)
  .option('--json', 'print the summary as JSON (and no progress)')
  .option('--out <file>', 'also write the JSON summary to this file')
  .option(
    '--fault <spec>',
    "add a fault to every seed's run, repeatable, as moat run --fault takes it; {seed} stands for the seed (e.g. third-party:kill@{seed})",
    repeated,
    [] as string[],
  )
  .option('--lockstep', `${LOCKSTEP_HELP}; the default for a scenario declared with defineScenario; each failing seed's hash is in the JSON summary`)
  .option('--realtime', `${REALTIME_HELP}; the replay commands printed carry it`)
  .addHelpText(
    'after',
    '\nProgress goes to stderr: a bar on a terminal, a line every tenth of the campaign otherwise.' +
      '\nCtrl-C cancels the seeds not yet started, waits for the running ones and prints the partial summary;' +
      '\na second Ctrl-C terminates the running ones. Exit codes: 0 all passed, 1 some seed failed, 2 bad usage,' +
      '\n130 interrupted before any seed failed.\n' +
      example('moat campaign ota-udp --seeds 200 --jobs 2', "moat campaign crash-mid-transfer --seeds 20 --fault 'ota:throw@{seed}'", 'moat campaign ./my-scenario.mjs --seeds 50 --first-seed 1000 --json --out campaign.json'),
  )
  .action((name: string, opts: CampaignCliOptions) => campaign(name, opts));

program.parseAsync(process.argv).catch((err: unknown) => {
  // Bad input gets its message; anything else its stack, as it is a bug to report.
  const expected = err instanceof ScenarioError || err instanceof CampaignOptionError;
  console.error(`moat: ${expected ? (err as Error).message : ((err as Error)?.stack ?? err)}`);
  process.exit(EXIT_USAGE);
});
