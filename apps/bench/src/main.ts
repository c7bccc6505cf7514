/**
 * `npm run bench [-- --json] [-- --quick]`: measures Moat against its
 * baselines in one process, prints the table (or one JSON object) and keeps
 * the JSON under results/ so later runs can be compared with this one.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { FULL, measureAll, QUICK } from './figures.js';
import { describeMachine, renderTable, type BenchReport } from './report.js';

const flags = new Set(process.argv.slice(2));
for (const f of flags) {
  if (f !== '--json' && f !== '--quick') {
    console.error(`usage: bench [--json] [--quick] (unknown option ${f})`);
    process.exit(2);
  }
}
const json = flags.has('--json');
const quick = flags.has('--quick');

const started = performance.now();
const date = new Date().toISOString();
// Progress goes to stderr so that --json leaves stdout one JSON object.
const plan = quick ? QUICK : FULL;
// Each step says when it started, so a slow measurement shows in the log.
const { figures, targets, scale } = await measureAll(plan, (what) => console.error(`[${((performance.now() - started) / 1000).toFixed(1)} s] measuring ${what}...`));
const durationMs = Math.round(performance.now() - started);
const report: BenchReport = { date, quick, durationMs, machine: describeMachine(), plan, figures, targets, scale };

const results = new URL('../results/', import.meta.url);
await mkdir(results, { recursive: true });
const file = new URL(`${date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}-${report.machine.hostname}.json`, results);
await writeFile(file, JSON.stringify(report, null, 2) + '\n');

console.log(json ? JSON.stringify(report) : renderTable(report));
console.error(`saved ${file.pathname}`);
