/** The terminal form of a scenario report. */
import type { ScenarioReport } from './report.js';
import { tallyCalls } from './report.js';

const useColor = () => process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number, text: string) => (useColor() ? `\x1b[${code}m${text}\x1b[0m` : text);
const green = (t: string) => paint(32, t);
const red = (t: string) => paint(31, t);
const bold = (t: string) => paint(1, t);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

const outcomeList = (o: Record<string, number>) =>
  Object.entries(o)
    .sort(([, a], [, b]) => b - a)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || '-';

/** The faults delivered to a domain (the kernel counts them as '(fault)' calls) and a kill by fault or watchdog. */
function faultsSuffered(delivered: Record<string, number> | undefined, status: string, error: string | undefined): string {
  const parts = Object.entries(delivered ?? {}).map(([kind, n]) => `${kind} ${n}`);
  // A kill at a syscall is in the kernel's count already; one at a time is the host's, and a watchdog's is neither.
  if (status === 'killed' && error?.startsWith('watchdog:')) parts.push('watchdog');
  else if (status === 'killed' && error?.startsWith('fault: kill') && !delivered?.kill) parts.push('kill 1');
  return parts.join(', ') || '-';
}

export function renderReport(r: ScenarioReport): string {
  const out: string[] = [];
  out.push(bold(`Scenario ${r.scenario}`) + ` (seed ${r.seed}${r.lockstep ? ', lockstep: virtual time' : ''}, ${(r.durationMs / 1000).toFixed(2)} s)`);
  out.push(r.description, '');
  out.push(bold('Domains'));
  const rows = [['domain', 'role', 'ended', 'restarts', 'faults suffered', 'syscalls', 'ok', 'refused (by errno)', 'bytes sent/received', 'left held']];
  for (const d of r.domains) {
    const { ['(fault)']: faults, ...calls } = d.calls;
    const t = tallyCalls(calls);
    const held = d.final ? `${d.final.handles} handles, ${d.final.buffers} buffers, ${d.final.bufferBytes + d.final.streamBytes} B` : '?';
    const bytes = d.bytes ? `${d.bytes.sent}/${d.bytes.received}` : '?';
    rows.push([d.name, d.role, d.status, String(d.restarts), faultsSuffered(faults, d.status, d.error), String(t.total), String(t.ok), outcomeList(t.refused), bytes, held]);
  }
  out.push(table(rows), '');
  for (const d of r.domains) {
    if (d.attempts.length === 0) continue;
    out.push(bold(`Attempts by ${d.name}`));
    const arows = [['attempt', 'tries', 'results', 'breaches']];
    for (const a of d.attempts) arows.push([a.name, String(a.tries), outcomeList(a.outcomes), String(a.breaches)]);
    out.push(table(arows), '');
  }
  for (const d of r.domains) {
    if (d.summary === undefined || d.summary === null) continue;
    out.push(`${bold(d.name)}: ${JSON.stringify(d.summary)}`);
  }
  const drops = Object.entries(r.kernel.stack).filter(([k]) => k.startsWith('drop.'));
  out.push('', bold('Kernel'));
  out.push(
    `internal errors ${r.kernel.internalErrors}, leaks ${r.kernel.leaks.length}, buffers in use ${r.kernel.pool.inUseBuffers} (${r.kernel.pool.inUseBytes} B), ` +
      `allocations ${r.kernel.pool.allocations}, allocation failures ${r.kernel.pool.failures}`,
  );
  out.push(`stack drops: ${drops.length ? drops.map(([k, n]) => `${k.slice(5)} ${n}`).join(', ') : 'none'}`, '');
  if (r.links?.length) {
    out.push(bold('Links'));
    const cols = ['offered', 'delivered', 'lost', 'duplicated', 'reordered', 'corrupted', 'partitionDrops', 'tooBig', 'queueDrops'];
    const lrows = [['direction', ...cols]];
    for (const l of r.links) lrows.push([l.name, ...cols.map((c) => String(l.stats[c] ?? 0))]);
    out.push(table(lrows), '');
  }
  if (r.captures?.length) out.push(`captures: ${r.captures.join(', ')}`, '');
  out.push(bold('Verdicts'));
  for (const v of r.verdicts) out.push(`${v.pass ? green('PASS') : red('FAIL')}  ${v.name}: ${v.detail}`);
  out.push('', r.passed ? green(bold('All verdicts pass.')) : red(bold('Some verdicts fail.')));
  return out.join('\n');
}
