/** The report of a scenario run: what each domain attempted and got, and the verdicts. */
import type { CallOutcomes, DomainStats, KernelStats } from '@moat/kernel';
import type { DomainStatus } from './machine.js';
import type { Timeline } from './timeline.js';

/** One kind of attempt a domain made, and what the kernel answered. */
export interface Attempt {
  name: string;
  tries: number;
  /** Results by 'OK' or errno name. */
  outcomes: Record<string, number>;
  /** Results that would mean isolation failed (an attacker's call that succeeded where it must not). */
  breaches: number;
  note?: string;
}

export interface DomainReport {
  name: string;
  role: string;
  status: DomainStatus;
  error?: string;
  /** What the program returned. */
  summary?: unknown;
  attempts: Attempt[];
  /** Every syscall's results as the kernel counted them. */
  calls: CallOutcomes;
  malformedFrames: number;
  /** Socket data the kernel copied in from it (sent) and out to it (received). */
  bytes?: { sent: number; received: number };
  /** Kernel accounting after the domain ended and was released: must be all zero. */
  final?: DomainStats['accounting'];
  /** Times its supervisor restarted it. */
  restarts: number;
  /** Each life's end, in order, when it was restarted. */
  lives?: { status: DomainStatus; error?: string }[];
}

export interface Verdict {
  name: string;
  pass: boolean;
  detail: string;
}

export interface ScenarioReport {
  scenario: string;
  description: string;
  seed: number;
  /** Run in lockstep (RunOptions.lockstep): the timeline's times are virtual, and a replay repeats its hash. */
  lockstep?: boolean;
  durationMs: number;
  domains: DomainReport[];
  /** The kernel the domains under test share. */
  kernel: Pick<KernelStats, 'internalErrors' | 'leaks' | 'pool' | 'stack' | 'lastInternalError'>;
  /** Each direction of each simulated link: its faults and what they did. */
  links?: { name: string; faults: object; stats: Record<string, number> }[];
  /** pcap files written during the run. */
  captures?: string[];
  /** The run's event trace, when it was recorded. */
  timeline?: Timeline;
  verdicts: Verdict[];
  passed: boolean;
}

/** Sums a domain's call results: all calls, successes, and refusals by errno. */
export function tallyCalls(calls: CallOutcomes): { total: number; ok: number; refused: Record<string, number> } {
  let total = 0;
  let ok = 0;
  const refused: Record<string, number> = {};
  for (const outcomes of Object.values(calls)) {
    for (const [result, n] of Object.entries(outcomes)) {
      total += n;
      if (result === 'OK') ok += n;
      else refused[result] = (refused[result] ?? 0) + n;
    }
  }
  return { total, ok, refused };
}

/** Adds one result to an attempt tally. */
export function record(attempt: Attempt, outcome: string, breach = false): void {
  attempt.tries++;
  attempt.outcomes[outcome] = (attempt.outcomes[outcome] ?? 0) + 1;
  if (breach) attempt.breaches++;
}

export function newAttempt(name: string, note?: string): Attempt {
  return { name, tries: 0, outcomes: {}, breaches: 0, note };
}
