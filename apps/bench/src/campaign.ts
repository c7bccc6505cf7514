/**
 * Campaign throughput: seeds of a small scenario run by `moat campaign`'s
 * runCampaign (a piscina pool of `jobs` threads), against the same seeds
 * run one after another in this thread with no pool.
 *
 * runCampaign is loaded at run time from the built CLI (`npm run bench`
 * builds every workspace first) rather than imported: @moat/cli is not a
 * dependency of this package, and a type import would make this package's
 * type-check wait for the CLI's build. `CampaignRun` is the part of its
 * CampaignSummary used here.
 */
import { fileURLToPath } from 'node:url';
import scenario from './scenarios/udp-echo.js';

const CLI_CAMPAIGN = new URL('../../cli/dist/campaign.js', import.meta.url);
const SCENARIO = new URL('./scenarios/udp-echo.js', import.meta.url);

interface CampaignRun {
  runs: number;
  passed: number;
  failed: number;
  wallMs: number;
  /** Runs per second of wall time. */
  perSecond: number;
  durationMs: { min: number; median: number; max: number } | null;
}

type RunCampaign = (options: { scenario: string; seeds: number; jobs: number; firstSeed?: number }) => Promise<CampaignRun>;

export interface CampaignResult {
  seeds: number;
  /** Pool threads; 0 for the sequential run in this thread. */
  jobs: number;
  /** Scenarios per second of wall time, pool start and stop included. */
  perSecond: number;
  wallMs: number;
  passed: number;
  failed: number;
  /** Median wall time of one seed, as the thread that ran it saw it. */
  medianSeedMs: number;
}

/** `seeds` seeds through runCampaign with `jobs` pool threads. */
export async function campaign(seeds: number, jobs: number): Promise<CampaignResult> {
  const { runCampaign } = (await import(CLI_CAMPAIGN.href)) as { runCampaign: RunCampaign };
  const s = await runCampaign({ scenario: fileURLToPath(SCENARIO), seeds, jobs });
  if (s.failed > 0 || s.runs !== seeds) throw new Error(`campaign of ${seeds} seeds: ${s.passed} passed, ${s.failed} failed`);
  // runCampaign rounds its rate to 2 decimals; from wallMs the figure keeps its precision.
  return { seeds, jobs, perSecond: s.runs / (s.wallMs / 1000), wallMs: s.wallMs, passed: s.passed, failed: s.failed, medianSeedMs: s.durationMs?.median ?? NaN };
}

/** The baseline: the same seeds, one after another, in this thread. */
export async function sequentialSeeds(seeds: number): Promise<CampaignResult> {
  const durations: number[] = [];
  const t = performance.now();
  for (let seed = 1; seed <= seeds; seed++) {
    const report = await scenario.run({ seed });
    if (!report.passed) throw new Error(`seed ${seed} of the campaign scenario failed: ${JSON.stringify(report.verdicts)}`);
    durations.push(report.durationMs);
  }
  const wallMs = performance.now() - t;
  durations.sort((a, b) => a - b);
  return { seeds, jobs: 0, perSecond: seeds / (wallMs / 1000), wallMs, passed: seeds, failed: 0, medianSeedMs: durations[Math.floor((seeds - 1) / 2)]! };
}
