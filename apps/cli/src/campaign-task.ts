/**
 * The piscina task of a campaign: runs one seed of a scenario in a pool
 * thread and hands back a compact result. The full report (domains' calls,
 * attempts, links...) stays in the thread; only what the summary needs
 * crosses back.
 */
import { parentPort, threadId } from 'node:worker_threads';
import type { ScenarioEntry } from '@moat/examples';
// Loaded with the task file, when the pool thread starts, so no seed's timeout pays for it.
import '@moat/examples';
import { clip, STARTED, type SeedResult, type SeedTask, type StartedMessage } from './campaign-protocol.js';
import { resolveScenario } from './resolve-scenario.js';

async function parsedFaults(specs: string[]) {
  const { parseFaultSpec } = await import('@moat/sim');
  return specs.map(parseFaultSpec);
}

// What a scenario prints would land in the campaign's stdout, which --json keeps for the summary alone.
console.log = console.info = console.error;

// A pool thread runs many seeds of one scenario: load its module once.
const loaded = new Map<string, Promise<ScenarioEntry>>();

export default async function runSeed(task: SeedTask): Promise<SeedResult> {
  parentPort?.postMessage({ [STARTED]: task.seed, thread: threadId } satisfies StartedMessage);
  const started = performance.now();
  const fail = (message: string): SeedResult => ({
    seed: task.seed,
    passed: false,
    durationMs: performance.now() - started,
    failedVerdicts: [],
    domains: [],
    error: { class: 'crash', message: clip(message) },
  });
  try {
    let entry = loaded.get(task.scenario);
    if (!entry) loaded.set(task.scenario, (entry = resolveScenario(task.scenario).then((r) => r.entry)));
    const faults = task.faults?.length ? await parsedFaults(task.faults) : undefined;
    const report: unknown = await (await entry).run({ seed: task.seed, ...(faults ? { faults } : {}), ...(task.lockstep ? { lockstep: true } : {}) });
    const durationMs = performance.now() - started;
    if (typeof report !== 'object' || report === null || !Array.isArray((report as { verdicts?: unknown }).verdicts)) {
      return fail(`run() did not return a scenario report (got ${report === null ? 'null' : typeof report} without a verdicts array)`);
    }
    const r = report as { passed?: unknown; verdicts: { name?: unknown; pass?: unknown; detail?: unknown }[]; domains?: unknown };
    const failedVerdicts = r.verdicts.filter((v) => v.pass !== true).map((v) => ({ name: String(v.name), detail: clip(String(v.detail ?? '')) }));
    const passed = r.passed === true && failedVerdicts.length === 0;
    // A report that says it failed without a failing verdict still needs a class to be grouped under.
    if (!passed && failedVerdicts.length === 0) failedVerdicts.push({ name: 'report not passed', detail: 'passed is not true, yet no verdict failed' });
    const domains = Array.isArray(r.domains)
      ? (r.domains as { name?: unknown; status?: unknown; error?: unknown }[]).map((d) => ({
          name: String(d.name),
          status: String(d.status),
          ...(d.error === undefined ? {} : { error: clip(String(d.error), 300) }),
        }))
      : [];
    const hash = (report as { timeline?: { hash?: unknown } }).timeline?.hash;
    return { seed: task.seed, passed, durationMs, failedVerdicts, domains, ...(typeof hash === 'string' ? { hash } : {}) };
  } catch (err) {
    return fail(err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err));
  }
}
