/** The built `moat` command as a user runs it: exit codes, output, --help, Ctrl-C. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { replayCommand, type CampaignSummary } from '../src/campaign.js';
import { faultsForSeed } from '../src/campaign-protocol.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const FLAKY = fixture('flaky.mjs');

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end; `onStderr` sees stderr as it grows and may signal the child. */
function moat(args: string[], onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const dir = await mkdtemp(join(tmpdir(), 'moat-cli-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('moat campaign', () => {
  it('--json: exits 1 and prints the summary (and only it; no progress), which --out also writes', async () => {
    const out = join(dir, 'summary.json');
    const r = await moat(['campaign', FLAKY, '--first-seed', '5', '--seeds', '4', '--jobs', '2', '--json', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    const s = JSON.parse(r.stdout) as CampaignSummary;
    expect(s).toMatchObject({ firstSeed: 5, seeds: 4, jobs: 2, runs: 4, passed: 2, failed: 2, failedSeeds: [6, 7], interrupted: false });
    expect(s.failures).toEqual([
      { class: 'crash', kind: 'crash', count: 1, seeds: [7] },
      { class: 'seed is not a multiple of 3', kind: 'verdict', count: 1, seeds: [6] },
    ]);
    expect(s.failing.map((f) => f.replay)).toEqual([`moat replay ${FLAKY} --seed 6`, `moat replay ${FLAKY} --seed 7`]);
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual(s);
  });

  it('text: the summary on stdout, progress lines on stderr (not a terminal); exit 0 when every seed passes', async () => {
    const [ok, bad] = await Promise.all([
      moat(['campaign', FLAKY, '--seeds', '2', '--jobs', '1']),
      moat(['campaign', FLAKY, '--first-seed', '2', '--seeds', '2', '--jobs', '2']),
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('2 runs: 2 passed, 0 failed');
    expect(ok.stdout).toMatch(/Wall time [\d.]+ s, [\d.]+ scenarios\/s/);
    expect(ok.stdout).toContain('Every seed passes.');
    expect(ok.stderr).toMatch(/2\/2 done, 0 failed/);
    expect(ok.stderr).not.toContain('\r');

    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/seed is not a multiple of 3\s+1\s+seed 3\n/);
    expect(bad.stdout).toContain(`moat replay ${FLAKY} --seed 3  # seed is not a multiple of 3: seed 3 % 3 = 0`);
  });

  it('Ctrl-C cancels queued seeds, a second one terminates the running seed, and the partial summary is printed', async () => {
    let interrupts = 0;
    const r = await moat(['campaign', FLAKY, '--first-seed', '11', '--seeds', '3', '--jobs', '1'], (text, child) => {
      // Once after the header (the handler is installed by then), once more if a seed was already running.
      if ((interrupts === 0 && text.includes('Ctrl-C stops it')) || (interrupts === 1 && text.includes('Ctrl-C again'))) {
        interrupts++;
        child.kill('SIGINT');
      }
    });
    expect(r.code).toBe(130);
    expect(r.stdout).toContain('0 runs: 0 passed, 0 failed (interrupted: 3 seeds not run)');
  });

  it('exits 2 with a message naming what is wrong', async () => {
    // Every message of the resolver is covered in resolve-scenario.test.ts; here, that each kind of error exits 2.
    const cases: [string[], RegExp][] = [
      [['campaign', FLAKY], /required option '--seeds <n>' not specified/],
      [['campaign', FLAKY, '--seeds', '0'], /option '--seeds <n>' argument '0' is invalid\. expected an integer >= 1/],
      [['campaign', fixture('no-run.mjs'), '--seeds', '2'], /scenario module .*no-run\.mjs: default export has no run\(\) function/],
      [['replay', FLAKY], /required option '--seed <n>' not specified/],
      [['run', 'nope'], /moat: no scenario named 'nope'; known: ota-isolation, ota-udp/],
    ];
    const results = await Promise.all(cases.map(([args]) => moat(args)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
    });
  });
});

describe('moat replay and run', () => {
  it('replays one seed: its report, its event log hash, and the exit code of its verdicts', async () => {
    const hash = (seed: number) => createHash('sha256').update(`flaky ${seed}`).digest('hex').slice(0, 16);
    const [fail, json, thrown, run] = await Promise.all([
      moat(['replay', FLAKY, '--seed', '3']),
      moat(['replay', FLAKY, '--seed', '4', '--json']),
      moat(['replay', FLAKY, '--seed', '7']),
      moat(['run', FLAKY, '--seed', '4']),
    ]);
    expect(fail.code).toBe(1);
    expect(fail.stdout).toContain('FAIL  seed is not a multiple of 3: seed 3 % 3 = 0');
    expect(fail.stdout.trimEnd().endsWith(`event log hash: ${hash(3)}`)).toBe(true);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ scenario: 'flaky', seed: 4, passed: true, timeline: { hash: hash(4) } });
    // The run itself threw: no report exists.
    expect(thrown.code).toBe(2);
    expect(thrown.stderr).toContain('flaky: seed 7 throws');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`event log hash: ${hash(4)}`);
  });
});

describe('report files', () => {
  it('run --trace and --html write the Chrome trace and the HTML report of the run', async () => {
    const trace = join(dir, 'trace.json');
    const html = join(dir, 'report.html');
    const r = await moat(['run', FLAKY, '--seed', '4', '--trace', trace, '--html', html]);
    expect(r.code).toBe(0);
    const parsed = JSON.parse(await readFile(trace, 'utf8')) as { traceEvents: { ph: string }[] };
    expect(parsed.traceEvents.some((e) => e.ph === 'M')).toBe(true);
    const page = await readFile(html, 'utf8');
    expect(page.startsWith('<!doctype html>') || page.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(page).toContain('flaky');
  });
});

describe('--fault', () => {
  const LOOPER = fixture('looper.mjs');
  it('injects the faults it is given into a declared scenario, and refuses ones it cannot place', async () => {
    const [thrown, unknown, garbled, undeclared] = await Promise.all([
      moat(['run', LOOPER, '--json', '--fault', 'looper:throw@5']),
      moat(['run', LOOPER, '--fault', 'nobody:kill@1']),
      moat(['run', LOOPER, '--fault', 'looper:explode']),
      moat(['run', FLAKY, '--fault', 'x:kill@1']),
    ]);
    expect(thrown.code).toBe(0); // the kernel survived: the scenario's only verdict
    const report = JSON.parse(thrown.stdout) as { domains: { status: string; error: string }[] };
    expect(report.domains[0]).toMatchObject({ status: 'threw' });
    expect(report.domains[0]!.error).toContain('fault: throw at syscall 5');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("faults[0].domain: no domain named 'nobody'");
    expect(garbled.code).toBe(2);
    expect(garbled.stderr).toContain("fault 'looper:explode': expected domain:kind@N");
    expect(undeclared.code).toBe(2);
    expect(undeclared.stderr).toContain('--fault needs a scenario declared with defineScenario');
  });
});

describe('campaign --fault', () => {
  it("places each seed's fault by {seed}, and its replay command carries the fault", async () => {
    const r = await moat(['campaign', fixture('looper.mjs'), '--seeds', '3', '--first-seed', '4', '--jobs', '1', '--json', '--fault', 'looper:throw@{seed}']);
    // Each seed's domain throws at its seed's syscall: the kernel survives, so the one verdict passes every seed.
    expect(r.code).toBe(0);
    const bad = await moat(['campaign', fixture('looper.mjs'), '--seeds', '1', '--fault', 'nobody:throw@{seed}']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("no domain named 'nobody'");
    expect(replayCommand('ota-udp', 7, faultsForSeed(['third-party:kill@{seed}', 'device:alloc@{seed}x3'], 7))).toBe(
      'moat replay ota-udp --seed 7 --fault third-party:kill@7 --fault device:alloc@7x3',
    );
  });
});

describe('lockstep by default', () => {
  it("campaigns and replays a declared scenario in lockstep: each failing seed's replay prints its hash again", async () => {
    const judged = fixture('looper-judged.mjs');
    const r = await moat(['campaign', judged, '--seeds', '2', '--first-seed', '30', '--jobs', '2', '--json', '--fault', 'looper:throw@{seed}']);
    expect(r.code).toBe(1);
    const summary = JSON.parse(r.stdout) as CampaignSummary;
    expect(summary.lockstep).toBe(true);
    expect(summary.failedSeeds).toEqual([30, 31]);
    const [first, second] = summary.failing;
    expect(first!.replay).toBe(`moat replay ${judged} --seed 30 --fault looper:throw@30 --lockstep`);
    expect(first!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(second!.hash).not.toBe(first!.hash);
    // Replay's own default is lockstep too: the command without the flag gives the same hash.
    const [replay, bare] = await Promise.all([moat(first!.replay.split(' ').slice(1)), moat(['replay', judged, '--seed', '30', '--fault', 'looper:throw@30'])]);
    expect(replay.code).toBe(1);
    expect(replay.stdout).toContain(`event log hash: ${first!.hash}`);
    expect(bare.stdout).toContain('lockstep: virtual time');
    expect(bare.stdout).toContain(`event log hash: ${first!.hash}`);
  });

  it('--realtime opts out, and says so in the replay commands; --lockstep with --realtime is refused', async () => {
    const judged = fixture('looper-judged.mjs');
    const [real, both, run] = await Promise.all([
      moat(['campaign', judged, '--seeds', '1', '--first-seed', '5', '--jobs', '1', '--json', '--realtime', '--fault', 'looper:throw@{seed}']),
      moat(['replay', judged, '--seed', '1', '--lockstep', '--realtime']),
      moat(['run', judged, '--seed', '1']),
    ]);
    const summary = JSON.parse(real.stdout) as CampaignSummary;
    expect(summary.lockstep).toBeUndefined();
    expect(summary.failing[0]!.replay).toBe(`moat replay ${judged} --seed 5 --fault looper:throw@5 --realtime`);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--lockstep and --realtime: choose one');
    // run stays on the real clock unless asked.
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain('lockstep');
  });

  it('replays a scenario declared realTime on the real clock unless --lockstep', async () => {
    const timed = fixture('looper-timed.mjs');
    const [real, forced] = await Promise.all([moat(['replay', timed, '--seed', '1']), moat(['replay', timed, '--seed', '1', '--lockstep'])]);
    expect(real.code).toBe(0);
    expect(real.stdout).not.toContain('lockstep');
    expect(forced.stdout).toContain('lockstep: virtual time');
  });
});

describe('--help', () => {
  it('describes every command with its arguments, defaults and an example', async () => {
    const [top, list, run, replay, campaign] = await Promise.all([[], ['list'], ['run'], ['replay'], ['campaign']].map((c) => moat([...c, '--help'])));
    for (const r of [top, list, run, replay, campaign]) {
      expect(r!.code).toBe(0);
      expect(r!.stdout).toMatch(/Examples?:\n {2}\$ moat /);
    }
    expect(top!.stdout).toMatch(/campaign \[options\] <scenario>/);
    expect(run!.stdout).toContain('--seed <n>');
    expect(run!.stdout).toContain('(default: 1)');
    expect(replay!.stdout).toContain('the seed to replay (required)');
    expect(campaign!.stdout).toMatch(/--timeout-ms <ms>[\s\S]*\(default: 120000\)/);
    expect(campaign!.stdout).toMatch(/--first-seed <s>[\s\S]*\(default: 1\)/);
    expect(campaign!.stdout).toMatch(/path of a \.js\/\.mjs\s+module/);
  });
});
