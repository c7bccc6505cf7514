/**
 * What crosses between the campaign (main thread) and its pool task: kept
 * apart from the task file so that importing it does not load the scenarios.
 */

export interface SeedTask {
  /** A scenario name, or a module's absolute path (ResolvedScenario.ref). */
  scenario: string;
  seed: number;
  /** Fault specs for this seed (`{seed}` already replaced), as `moat run --fault` takes them. */
  faults?: string[];
  /** Run it in lockstep (RunOptions.lockstep), so that its replay repeats its event log. */
  lockstep?: boolean;
}

/** A campaign's fault spec for one seed: `{seed}` stands for the seed, so each seed can fault at a different point. */
export function faultsForSeed(specs: readonly string[], seed: number): string[] {
  return specs.map((s) => s.replaceAll('{seed}', String(seed)));
}

/** Why a seed failed when it has no verdict to blame. */
export type ErrorClass = 'crash' | 'timeout';

export interface SeedResult {
  seed: number;
  passed: boolean;
  /** Wall time of the run (for a timeout: until its thread was stopped). */
  durationMs: number;
  failedVerdicts: { name: string; detail: string }[];
  domains: { name: string; status: string; error?: string }[];
  /** The event log hash of its report, when it has one (in lockstep, its replay gives the same). */
  hash?: string;
  /** Set when the run threw, its thread died, or it timed out: there is no report. */
  error?: { class: ErrorClass; message: string };
}

/** The message a task posts when it starts, so the host times the run and not its wait in the queue. */
export const STARTED = 'moat.campaign.started';
export interface StartedMessage {
  [STARTED]: number;
  /** The pool thread's threadId: a thread that dies may have been killed by an earlier seed's leftovers. */
  thread: number;
}

/** Error texts can carry whole stacks of nested causes: keep the transfer small. */
const MAX_MESSAGE = 2000;
export const clip = (text: string, max = MAX_MESSAGE) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
