#!/usr/bin/env node
/**
 * The `moat` command. Exit codes CI can use: 0 every verdict passed,
 * 1 some verdict failed, 2 bad usage or an error before a report existed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { SCENARIOS } from '@moat/examples';
import { renderReport } from '@moat/sim';

const EXIT_PASS = 0;
const EXIT_FAIL = 1;
const EXIT_USAGE = 2;

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

const program = new Command('moat')
  .description('Design and test isolation in network stacks: run scenarios where protection domains share a kernel and its TCP/IP stack.')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
  .showHelpAfterError();

program
  .command('list')
  .description('list the scenarios this build knows')
  .option('--json', 'print JSON')
  .action((opts: { json?: boolean }) => {
    if (opts.json) console.log(JSON.stringify(SCENARIOS.map(({ name, description }) => ({ name, description })), null, 2));
    else for (const s of SCENARIOS) console.log(`${s.name}\n  ${s.description}`);
  });

program
  .command('run')
  .description('run one scenario and print its report')
  .argument('<scenario>', 'scenario name (see `moat list`)')
  .option('--seed <n>', 'seed for every random choice of the run', integer, 1)
  .option('--json', 'print the report as JSON instead of text')
  .option('--out <file>', 'also write the JSON report to this file')
  .option('--capture <dir>', 'write a pcap file per interface of each machine into this folder')
  .action(async (name: string, opts: { seed: number; json?: boolean; out?: string; capture?: string }) => {
    const scenario = SCENARIOS.find((s) => s.name === name);
    if (!scenario) {
      console.error(`moat: no scenario named '${name}'; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
      process.exit(EXIT_USAGE);
    }
    if (opts.capture) await mkdir(opts.capture, { recursive: true });
    const report = await scenario.run({ seed: opts.seed, captureDir: opts.capture && resolve(opts.capture) });
    const json = JSON.stringify(report, null, 2);
    if (opts.out) await writeFile(opts.out, json + '\n');
    console.log(opts.json ? json : renderReport(report));
    process.exitCode = report.passed ? EXIT_PASS : EXIT_FAIL;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`moat: ${(err as Error)?.stack ?? err}`);
  process.exit(EXIT_USAGE);
});
