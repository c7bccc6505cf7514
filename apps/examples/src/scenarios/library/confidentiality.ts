/**
 * confidentiality: the OTA's data carries a marker; two spies on the same
 * kernel churn its buffers and scan everything they are handed. None may
 * ever see the marker (invariant 4: data crosses by copy, buffers are
 * cleared before reuse, each reply owns exactly its bytes).
 */
import { defineScenario, type DomainDefinition } from '@moat/sim';
import type { MarkedOtaArgs, MarkedOtaResult } from '../../programs/marked-ota.js';
import type { SpyArgs, SpyResult } from '../../programs/spy.js';
import { program, valueOf } from './common.js';

const SPIES = [
  { name: 'spy-1', port: 24710 },
  { name: 'spy-2', port: 24711 },
];

function spy(name: string, port: number, after?: string): DomainDefinition {
  return {
    name,
    role: 'spy scanning for the marker',
    machine: 'device',
    program: program('spy'),
    args: ({ seed }: { seed: number }) => ({ controlPort: port, seed, maxMs: 15_000 }) satisfies SpyArgs,
    ...(after ? { startAfter: { domain: after, log: '^loaded' } } : {}),
  };
}

export default defineScenario({
  name: 'confidentiality',
  description:
    "The OTA moves its own data through the kernel, every byte of it a 16-byte marker from the seed repeated: a TCP connection to itself both ways, " +
    'datagrams of every buffer size read whole, cut short and peeked, connections reset with data unread. Meanwhile two spies on the same kernel churn ' +
    "its buffers and scan everything they are handed (data, the memory behind it, raw reply frames); no spy may ever see the marker.",
  machines: [{ name: 'device' }],
  domains: [
    spy(SPIES[0]!.name, SPIES[0]!.port),
    spy(SPIES[1]!.name, SPIES[1]!.port, SPIES[0]!.name),
    {
      name: 'ota',
      role: 'OTA updater (marked data)',
      machine: 'device',
      program: program('marked-ota'),
      args: ({ seed }: { seed: number }) =>
        ({ seed, durationMs: 1500, spies: SPIES.map((s) => ({ addr: '127.0.0.1', port: s.port })) }) satisfies MarkedOtaArgs,
      startAfter: { domain: SPIES[1]!.name, log: '^loaded' },
    },
  ],
  expect: [
    {
      name: 'No other domain ever saw the marker',
      // A buffer handed out uncleared, a reply posted with the encoder's scratch memory behind it, a
      // receive that returned more than the datagram: any would put the OTA's bytes in a spy's hands.
      check: (run) => {
        const spies = SPIES.map((s) => ({ name: s.name, r: valueOf<SpyResult>(run, s.name) }));
        const missing = spies.filter((s) => !s.r).map((s) => s.name);
        const hits = spies.reduce((n, s) => n + (s.r?.hits ?? 0), 0);
        const pass = missing.length === 0 && hits === 0 && spies.every((s) => s.r!.bytes > 0 && s.r!.toldDone);
        return {
          pass,
          detail:
            spies
              .map((s) => (s.r ? `${s.name}: ${s.r.buffers} buffers (${(s.r.bytes / 1048576).toFixed(1)} MiB) in ${s.r.rounds} rounds, ${s.r.hits} with the marker${s.r.where.length ? ` (${s.r.where.join(', ')})` : ''}` : `${s.name}: no result`))
              .join('; ') + (missing.length ? '' : spies.every((s) => s.r!.toldDone) ? '' : '; a spy stopped before the OTA was done'),
        };
      },
    },
    {
      name: "The marker was in the kernel's buffers, and the scan could see it",
      // The positive controls: the OTA's marked data really went through the shared kernel while the
      // spies ran (and came back intact to the OTA), and each spy's scanner finds a planted marker.
      check: (run) => {
        const r = valueOf<MarkedOtaResult>(run, 'ota');
        const selfTests = SPIES.map((s) => valueOf<SpyResult>(run, s.name)?.selfTest === true);
        const pool = run.kernels.device?.pool;
        if (!r) return { pass: false, detail: `the OTA left no result (${run.outcomes.ota?.status}: ${run.outcomes.ota?.error})` };
        return {
          pass: r.wrongBytes === 0 && r.streamBytes > 1 << 20 && r.datagrams > 0 && r.resets > 0 && selfTests.every(Boolean),
          detail:
            `the OTA moved ${(r.streamBytes / 1048576).toFixed(1)} MiB over TCP and ${r.datagrams} datagrams (${(r.datagramBytes / 1048576).toFixed(1)} MiB) in ${r.ms} ms, ` +
            `reset ${r.resets} connections with data unread, got back ${r.wrongBytes} wrong bytes; spies' self-tests ${selfTests.map((t) => (t ? 'found' : 'MISSED')).join(', ')} the planted marker; ` +
            `${pool?.allocations ?? '?'} pool allocations in all`,
        };
      },
    },
  ],
  timeoutMs: 30_000,
});
