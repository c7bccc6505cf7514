/**
 * request-mutation: a domain sends requests from shared memory and changes
 * them from a thread of its own while the kernel reads them; the kernel must
 * act on one consistent copy (invariant 3).
 */
import { defineScenario } from '@moat/sim';
import type { RequestMutatorArgs, RequestMutatorResult } from '../../programs/request-mutator.js';
import { program, valueOf } from './common.js';

const result = (run: Parameters<typeof valueOf>[0]) => valueOf<RequestMutatorResult>(run, 'mutator');

export default defineScenario({
  name: 'request-mutation',
  description:
    'A domain sends requests whose frame lives in a SharedArrayBuffer and, from a worker thread it starts itself, keeps flipping one byte of the ' +
    'frame between two versions while the kernel reads it: a syscall number, a handle (another, or a forged one), a valid or invalid address, a ' +
    'payload byte, a length prefix, the call id. Every reply must answer one version or the other, never a mix, with no internal error.',
  machines: [{ name: 'device' }],
  domains: [
    {
      name: 'mutator',
      role: 'mutates its requests from a second thread',
      machine: 'device',
      program: program('request-mutator'),
      args: { minPerPair: 200, maxPerPair: 3000, minEach: 5 } satisfies RequestMutatorArgs,
    },
  ],
  expect: [
    {
      name: 'Every reply answers the original or the mutated request',
      // A kernel that validated one reading of the frame and acted on another (a double fetch) would
      // answer neither version: a mix, or EFAULT from a handler fed what the schema never saw.
      check: (run) => {
        const r = result(run);
        if (!r) return { pass: false, detail: `no result (${run.outcomes.mutator?.status}: ${run.outcomes.mutator?.error})` };
        const neither = r.pairs.reduce((n, p) => n + p.neither, 0);
        const total = r.pairs.reduce((n, p) => n + p.original + p.mutated + p.neither, 0);
        const odd = r.pairs.filter((p) => p.neither).map((p) => `${p.name}: ${p.odd.join(' | ')}`);
        return { pass: r.pairs.length === 8 && neither === 0, detail: `${total} requests in ${r.pairs.length} pairs, ${neither} answered neither version${odd.length ? `: ${odd.join('; ')}` : ''}` };
      },
    },
    {
      name: 'The mutation raced the kernel',
      // Both answers must have come back for every pair: otherwise the byte never changed while the
      // kernel was reading, and the verdict above tested nothing.
      check: (run) => {
        const r = result(run);
        if (!r) return { pass: false, detail: 'no result' };
        const raced = r.pairs.filter((p) => p.original > 0 && p.mutated > 0);
        return {
          pass: r.pairs.length > 0 && raced.length === r.pairs.length,
          detail: `${r.pairs.map((p) => `${p.name}: ${p.original}/${p.mutated}`).join('; ')} (original/mutated answers); ~${(r.toggles / 1e6).toFixed(0)}M flips`,
        };
      },
    },
    {
      name: 'Every datagram a racing send put on the wire arrived whole, as one version',
      // A kernel that checksummed one reading of the payload and copied another would have the
      // receiver drop it (a bad checksum) or deliver bytes of both versions.
      check: (run) => {
        const r = result(run);
        const drops = run.kernels.device?.stack['drop.udp.checksum'] ?? 0;
        if (!r) return { pass: false, detail: 'no result' };
        const d = r.datagrams;
        return {
          pass: d.sent > 0 && d.received === d.sent && d.torn === 0 && drops === 0,
          detail: `${d.sent} sent, ${d.received} received, ${d.whole} whole, ${d.torn} torn; ${drops} dropped by the stack for a bad checksum`,
        };
      },
    },
  ],
  timeoutMs: 30_000,
});
