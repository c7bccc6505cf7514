/**
 * runCampaign on a real piscina pool. The pool threads load compiled JavaScript
 * (a worker cannot load TypeScript on Node 20), so the campaign under test is
 * the built one in dist/, typed from its source.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { shellQuote, summarize, type SeedResult } from '../src/campaign.js';

const { runCampaign, CampaignOptionError } = (await import(new URL('../dist/campaign.js', import.meta.url).href)) as typeof import('../src/campaign.js');

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const FLAKY = fixture('flaky.mjs');
const MULTIPLE_OF_3 = 'seed is not a multiple of 3';

describe('runCampaign', () => {
  it('classes every failure (verdict, crash, timeout) and gives each failing seed its replay command', async () => {
    const results: SeedResult[] = [];
    const started: number[] = [];
    const s = await runCampaign({
      scenario: FLAKY,
      seeds: 12,
      jobs: 2,
      timeoutMs: 2500,
      onStart: (seed) => started.push(seed),
      onResult: (r, p) => {
        results.push(r);
        expect(p).toMatchObject({ done: results.length, total: 12 });
      },
    });
    expect(results.map((r) => r.seed).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(started.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(s).toMatchObject({ scenario: FLAKY, firstSeed: 1, seeds: 12, jobs: 2, runs: 12, passed: 6, failed: 6, interrupted: false, notRun: 0 });
    expect(s.failures).toEqual([
      { class: MULTIPLE_OF_3, kind: 'verdict', count: 4, seeds: [3, 6, 9, 12] },
      { class: 'crash', kind: 'crash', count: 1, seeds: [7] },
      { class: 'timeout', kind: 'timeout', count: 1, seeds: [11] },
    ]);
    expect(s.failedSeeds).toEqual([3, 6, 7, 9, 11, 12]);
    expect(s.failing.map((f) => f.replay)).toEqual(s.failedSeeds.map((seed) => `moat replay ${FLAKY} --seed ${seed}`));
    const bySeed = Object.fromEntries(s.failing.map((f) => [f.seed, f]));
    expect(bySeed[3]).toMatchObject({
      classes: [MULTIPLE_OF_3],
      failedVerdicts: [{ name: MULTIPLE_OF_3, detail: 'seed 3 % 3 = 0' }],
      domains: [{ name: 'only', status: 'returned' }],
    });
    expect(bySeed[7]!.error).toMatchObject({ class: 'crash', message: expect.stringContaining('flaky: seed 7 throws') });
    expect(bySeed[11]!.error).toEqual({ class: 'timeout', message: 'no result after 2500 ms; its thread was terminated' });
    expect(bySeed[11]!.replay).toBe(`moat replay ${FLAKY} --seed 11`);
    expect(s.threadErrors).toEqual([]);
    expect(s.perSecond).toBeGreaterThan(0);
  });

  it('runs real machines (a kernel worker and domain workers) inside the pool threads', async () => {
    const s = await runCampaign({ scenario: fixture('udp-exchange.mjs'), seeds: 2, jobs: 2, firstSeed: 40 });
    expect(s).toMatchObject({ runs: 2, passed: 2, failed: 0, failures: [], durationMs: { min: expect.any(Number) } });
  });

  it('on stop cancels the seeds not started, lets running ones finish, and reports what ran', async () => {
    const stop = new AbortController();
    const seen: number[] = [];
    const s = await runCampaign({
      scenario: FLAKY,
      seeds: 10,
      jobs: 1,
      signal: stop.signal,
      onResult: (r) => {
        seen.push(r.seed);
        stop.abort();
      },
    });
    // Seed 1 finished; seed 2 at most was handed to the thread before the stop.
    expect(seen[0]).toBe(1);
    expect(seen.every((seed) => seed <= 2)).toBe(true);
    expect(s).toMatchObject({ interrupted: true, runs: seen.length, notRun: 10 - seen.length, failed: 0 });
  });

  it('on force terminates a seed that never finishes', async () => {
    const stop = new AbortController();
    const force = new AbortController();
    const s = await runCampaign({
      scenario: FLAKY,
      firstSeed: 11,
      seeds: 3,
      jobs: 1,
      signal: stop.signal,
      forceSignal: force.signal,
      onStart: (seed) => {
        expect(seed).toBe(11);
        stop.abort();
        force.abort();
      },
    });
    expect(s).toMatchObject({ interrupted: true, runs: 0, notRun: 3, failures: [], failedSeeds: [] });
  });

  it('rejects a bad scenario or bad numbers before any thread starts', async () => {
    await expect(runCampaign({ scenario: fixture('no-run.mjs'), seeds: 1, jobs: 1 })).rejects.toThrow(
      `scenario module ${fixture('no-run.mjs')}: default export has no run() function`,
    );
    await expect(runCampaign({ scenario: 'no-such-scenario', seeds: 1, jobs: 1 })).rejects.toThrow(/no scenario named 'no-such-scenario'; known: ota-isolation/);
    await expect(runCampaign({ scenario: FLAKY, seeds: 0, jobs: 1 })).rejects.toBeInstanceOf(CampaignOptionError);
    await expect(runCampaign({ scenario: FLAKY, seeds: 1, jobs: 1.5 })).rejects.toThrow('jobs must be an integer >= 1');
  });
});

describe('summarize', () => {
  const result = (seed: number, failedVerdicts: string[], error?: SeedResult['error']): SeedResult => ({
    seed,
    passed: failedVerdicts.length === 0 && !error,
    durationMs: seed * 10,
    failedVerdicts: failedVerdicts.map((name) => ({ name, detail: `${name} failed` })),
    domains: [],
    ...(error ? { error } : {}),
  });
  const plan = { firstSeed: 1, seeds: 6, jobs: 2, timeoutMs: 1000 };

  it('puts a seed that failed two verdicts in both groups, most frequent first, and takes results in any order', () => {
    const s = summarize('my scenario.mjs', plan, [result(5, ['b']), result(2, ['a', 'b']), result(1, []), result(4, [], { class: 'crash', message: 'x' })], {
      wallMs: 2000,
      interrupted: true,
    });
    expect(s.failures).toEqual([
      { class: 'b', kind: 'verdict', count: 2, seeds: [2, 5] },
      { class: 'a', kind: 'verdict', count: 1, seeds: [2] },
      { class: 'crash', kind: 'crash', count: 1, seeds: [4] },
    ]);
    expect(s).toMatchObject({ runs: 4, passed: 1, failed: 3, failedSeeds: [2, 4, 5], interrupted: true, notRun: 2, perSecond: 2 });
    expect(s.durationMs).toEqual({ min: 10, median: 20, max: 50 });
    expect(s.failing[0]!.replay).toBe("moat replay 'my scenario.mjs' --seed 2");
  });

  it('is not interrupted when every seed ran, even if a stop came late', () => {
    const s = summarize('x', { ...plan, seeds: 1 }, [result(1, [])], { wallMs: 1, interrupted: true });
    expect(s).toMatchObject({ interrupted: false, notRun: 0 });
  });

  it('quotes for the shell only what needs it', () => {
    expect(shellQuote('ota-udp')).toBe('ota-udp');
    expect(shellQuote('./a/b_c.mjs')).toBe('./a/b_c.mjs');
    expect(shellQuote("it's here.mjs")).toBe(`'it'\\''s here.mjs'`);
  });
});
