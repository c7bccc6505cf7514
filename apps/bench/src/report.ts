/** Presenting a run: the machine it ran on, the JSON record and the table. */
import os from 'node:os';
import type { Figure, Measure, Plan, ScaleRaw, Target } from './figures.js';

export interface MachineDescription {
  cpu: string;
  cores: number;
  memoryBytes: number;
  node: string;
  platform: string;
  hostname: string;
}

export interface BenchReport {
  date: string;
  quick: boolean;
  durationMs: number;
  machine: MachineDescription;
  /** Iterations, windows and passes: runs are comparable only under the same plan. */
  plan: Plan;
  figures: Figure[];
  /** Issue 6's targets, each judged on a figure's ratio. */
  targets: Target[];
  /** The once-per-run measurements' raw readings and start-up times. */
  scale: ScaleRaw;
}

export function describeMachine(): MachineDescription {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    hostname: os.hostname(),
  };
}

function number(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

function cell(m: Measure): string {
  if (m.unit === 'µs' || m.unit === 'ms') {
    const one = m.samples === 1 ? '' : ` (p99 ${number(m.p99!)})`;
    return `${number(m.median)} ${m.unit}${one}`;
  }
  if (m.memory) {
    const kernel = m.memory.kernelBytes === undefined ? '' : ` (kernel heap ${number(m.memory.kernelBytes / 1024)} KiB)`;
    return `${number(m.median)} ${m.unit}${kernel}`;
  }
  if (m.unit === 'MB/s' && m.datagramsPerSec === undefined) return `${number(m.median)} MB/s`;
  if (m.unit === 'MB/s') {
    const delivered = `${(m.deliveredFraction! * 100).toFixed(m.deliveredFraction === 1 ? 0 : 1)}% delivered`;
    return `${number(m.median)} MB/s, ${number(m.datagramsPerSec!)} dgram/s, ${delivered}`;
  }
  return `${number(m.median)} ${m.unit}`;
}

export function renderTable(report: BenchReport): string {
  const rows = [
    ['Moat figure', 'Moat', 'Baseline (same run)', 'Baseline', 'Moat/baseline'],
    ...report.figures.map((f) => [f.figure, cell(f.moat), f.baseline.name, cell(f.baseline), `${f.ratioOf ? `${f.ratioOf} ` : ''}${f.ratio.toFixed(2)}x`]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((s, c) => (c === r.length - 1 ? s.padStart(widths[c]!) : s.padEnd(widths[c]!))).join('  ');
  const m = report.machine;
  const links = report.figures.filter((f) => f.moat.link);
  const dropped = links.flatMap((f) => {
    const nonzero = Object.entries(f.moat.link!.drops).filter(([, v]) => v > 0);
    return nonzero.length === 0 ? [] : [`  ${f.figure}: ${nonzero.map(([k, v]) => `${k} ${v}`).join(', ')}`];
  });
  const linkNote =
    links.length === 0
      ? []
      : [
          '',
          `Moat across a link / Moat on one machine (same run): ${links.map((f) => `${f.figure} ${f.moat.link!.vsOneMachine.toFixed(2)}x`).join('; ')}.`,
          ...(dropped.length === 0
            ? ['Across the links nothing was dropped: no frame, fragment or datagram (counters of both kernels and the link, in the JSON).']
            : ['Dropped across the links (both kernels and the link; whole transfers, warm-up rounds included; all counters in the JSON):', ...dropped]),
        ];
  return [
    `Moat bench, ${report.date}${report.quick ? ' (--quick: few iterations, a smoke test)' : ''}`,
    `${m.cpu}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${m.node}, ${m.platform}`,
    '',
    line(rows[0]!),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
    ...linkNote,
    ...tcpNotes(report.figures),
    ...transferNotes(report.figures),
    ...scaleNotes(report),
    '',
    'Medians (latency: µs per round trip or ms of start-up, p99 beside; throughput: per second; memory: growth per',
    'connection, domain or worker, of the whole process\'s rss). Ratio = Moat median / baseline median (p99 / p99 where',
    'marked): above 1 Moat is slower for latencies and uses more for memory; below 1 Moat is slower for throughputs.',
    ...targetLines(report.targets),
  ].join('\n');
}

/** Below the table: how the scale figures were read, and what the kernel counted. */
function scaleNotes(report: BenchReport): string[] {
  const { moat, collected } = report.scale;
  const errors = Object.entries(moat.counters).filter(([k, v]) => /kernel\.(internalErrors|leaks)$/.test(k) && v > 0);
  const drops = Object.entries(moat.counters).filter(([k, v]) => k.startsWith('stack.drop.') && v > 0);
  // Each reading after the first covers only the connections added since the one before.
  const opening = (readings: { count: number; openMs: number }[]) =>
    readings
      .filter((r) => r.count > 0)
      .map((r, i, all) => `${(r.count - (all[i - 1]?.count ?? 0)).toLocaleString('en-US')} in ${(r.openMs / 1000).toFixed(1)} s`)
      .join(', then ');
  return [
    '',
    'Moat at scale (once per run, one kernel):',
    `  memory: ${collected ? 'every thread collected its garbage (through the inspector) before each reading' : 'plain rss deltas, the inspector being unavailable'};`,
    '  the kernel heap in brackets is the kernel worker\'s own growth (heap in use and external), read from inside it.',
    `  connections opened: ${opening(moat.connections)} (the pairs after the first all at once; Node: ${opening(report.scale.netIdle.readings)});`,
    `  the kernel then held ${moat.counters['domains.sockets']!.toLocaleString('en-US')} sockets of its domains; ${
      errors.length === 0 ? 'no internal error or leak' : `KERNEL ERRORS: ${errors.map(([k, v]) => `${k} ${v}`).join(', ')}`
    }, ${drops.length === 0 ? 'nothing dropped' : `dropped: ${drops.map(([k, v]) => `${k} ${v}`).join(', ')}`
    }, ${moat.counters['stack.out.tcpRst']} RSTs.`,
  ];
}

/** After the table: issue 6's targets, each with its figure's ratio. */
function targetLines(targets: Target[]): string[] {
  if (targets.length === 0) return [];
  const width = Math.max(...targets.map((t) => t.target.length));
  return [
    '',
    'Targets of issue 6:',
    ...targets.map(
      (t) =>
        `  ${t.target.padEnd(width)}  ${t.measured.toFixed(2)}x (${t.kind === 'max' ? '<=' : '>='} ${t.limit}x)  ${t.met ? 'MET' : 'NOT MET'}${t.caveat ? ` (${t.caveat})` : ''}`,
    ),
  ];
}

/** Below the table: each bulk transfer's rate, pass by pass, so that the end of the warm-up shows. */
function transferNotes(figures: Figure[]): string[] {
  const notes: string[] = [];
  for (const f of figures) {
    const moat = f.moat.transfers;
    const base = f.baseline.transfers;
    if (!moat || !base) continue;
    const timed = Math.round(f.moat.samples / moat.length);
    const passes = (runs: number[][]) => runs.map((pass) => `[${pass.join(' ')}]`).join(' ');
    notes.push(`  ${f.figure} (the last ${timed} of each pass timed):`, `    Moat: ${passes(moat)}`, `    ${f.baseline.name}: ${passes(base)}`);
  }
  return notes.length === 0 ? [] : ['', 'TCP bulk, MB/s of every transfer, warm-up ones first, one bracket per pass:', ...notes];
}

/** Below the table: what the kernels counted during the Moat TCP figures. */
function tcpNotes(figures: Figure[]): string[] {
  const notes: string[] = [];
  for (const f of figures) {
    const t = f.moat.tcp;
    if (!t) continue;
    const dropped = Object.entries(t.drops).filter(([, v]) => v > 0);
    const errors = Object.entries(t.counters).filter(([k, v]) => /kernel\.(internalErrors|leaks)$/.test(k) && v > 0);
    const parts = [
      t.vsOneMachine !== undefined ? `${t.vsOneMachine.toFixed(2)}x the one-machine figure` : undefined,
      t.derived.segmentsPerAck !== undefined ? `${t.derived.segmentsPerAck.toFixed(1)} data segments per ACK` : undefined,
      t.derived.segmentsPerConnection !== undefined ? `${t.derived.segmentsPerConnection.toFixed(2)} segments per connection` : undefined,
      t.blockRates ? `per block of connections ${t.blockRates.map((pass) => `[${pass.map((r) => r.toFixed(0)).join(', ')}]`).join(' ')} /s` : undefined,
      dropped.length === 0 ? 'nothing dropped' : `dropped: ${dropped.map(([k, v]) => `${k} ${v}`).join(', ')}`,
      errors.length === 0 ? 'no kernel errors or leaks' : `KERNEL ERRORS: ${errors.map(([k, v]) => `${k} ${v}`).join(', ')}`,
    ].filter((p) => p !== undefined);
    notes.push(`  ${f.figure}: ${parts.join('; ')}.`);
  }
  return notes.length === 0 ? [] : ['', 'Moat TCP, what the kernels counted (all passes, warm-up included; all counters in the JSON):', ...notes];
}
