/**
 * forged-handles: a neighbour uses handles it was never given (random,
 * near-valid, negative, huge, non-integer, stale and the OTA's own numbers)
 * on every call that takes one, while the OTA is halfway through a TCP
 * download with data queued on its connection.
 */
import { defineScenario, type ScenarioRun } from '@moat/sim';
import type { HandleForgerArgs, HandleForgerResult } from '../../programs/handle-forger.js';
import type { OtaStreamResult } from '../../programs/ota-stream.js';
import { CLEAN_LINK, DEVICE, merged, midwayOta, otaIntact, otaUntouched, outcomesText, PORTS, program, SERVER, updateServer, valueOf } from './common.js';

const KINDS = ['random handles', 'near-valid handles', 'negative handles', 'huge handles', 'non-integer handles', 'stale handles', 'foreign handles'];
const BAD_HANDLE = new Set(['EBADF', 'ENOTSOCK', 'POLLNVAL']);

export default defineScenario({
  name: 'forged-handles',
  description:
    'A neighbour of the OTA calls every handle-taking syscall on handles it was never given: random and near-valid numbers, negative, huge and ' +
    "non-integer values, its own stale handles (closed, the slot reused) and the OTA's own numbers, while the OTA is halfway through a TCP download. " +
    "Every use must be refused (EBADF, poll POLLNVAL) and the OTA's download and socket must be untouched.",
  machines: [DEVICE, SERVER],
  links: [CLEAN_LINK],
  domains: [
    updateServer(512 << 10),
    {
      name: 'forger',
      role: 'handle forger',
      machine: 'device',
      program: program('handle-forger'),
      args: ({ seed }: { seed: number }) => ({ controlPort: PORTS.neighbour, seed }) satisfies HandleForgerArgs,
      startAfter: { domain: 'update-server', log: '^serving' },
    },
    midwayOta('forger'),
  ],
  expect: [
    {
      name: 'Every forged, stale and foreign handle refused',
      // A kernel that ignored generations would let a stale handle through; one that looked
      // numbers up in a shared table, the OTA's; one that coerced values, '1024' or 1024.5.
      check: (run) => {
        const r = valueOf<HandleForgerResult>(run, 'forger');
        if (!r) return { pass: false, detail: 'the forger left no result' };
        const all = merged(r.attempts, KINDS);
        const other = Object.entries(all.outcomes).filter(([k]) => !BAD_HANDLE.has(k));
        const missing = KINDS.filter((k) => !(r.attempts.find((a) => a.name === k)?.tries ?? 0));
        return {
          pass: all.count === KINDS.length && missing.length === 0 && other.length === 0 && all.breaches === 0,
          detail:
            `${all.tries} calls on ${Object.values(r.handles).reduce((a, b) => a + b, 0)} handles (${Object.entries(r.handles).map(([k, n]) => `${k} ${n}`).join(', ')}): ` +
            `${outcomesText(all.outcomes)}` +
            (other.length ? `; NOT refused as a bad handle: ${other.map(([k, n]) => `${k} ${n}`).join(', ')}` : '') +
            (missing.length ? `; never tried: ${missing.join(', ')}` : ''),
        };
      },
    },
    {
      name: 'The kernel counted every refusal',
      // The forger's tally is its own word; the kernel's count of the same calls must agree,
      // or some calls never reached the kernel (and proved nothing).
      check: (run) => kernelAgrees(run),
    },
    {
      name: 'A stale handle never reached the socket that took its slot',
      check: (run) => {
        const r = valueOf<HandleForgerResult>(run, 'forger');
        if (!r) return { pass: false, detail: 'the forger left no result' };
        const { rounds, sameSlot, untouched, failures } = r.reuse;
        return {
          pass: rounds > 0 && sameSlot === rounds && untouched === rounds,
          detail:
            `${rounds} rounds: the new socket took the closed one's slot in ${sameSlot}, and was exactly as set up (bound, SO_RCVTIMEO, blocking, its datagram queued) in ${untouched}` +
            (failures.length ? `; ${failures.slice(0, 3).join('; ')}` : ''),
        };
      },
    },
    { name: "OTA's download intact", check: (run) => otaIntact(run) },
    {
      name: "OTA's socket untouched during the attack",
      check: (run) => {
        const untouched = otaUntouched(run);
        const m = valueOf<OtaStreamResult>(run, 'ota')?.midway;
        // The OTA waited on its side connection through the whole attack: 'eof' after the forger's report.
        const waited = m?.ending === 'eof' && /^forged-handles done/.test(m.report);
        return {
          pass: untouched.pass && waited,
          detail: `${untouched.detail}; the attack ran while the OTA held ${m?.at ?? '?'} bytes of its image and data was queued (side connection: ${m?.ending ?? 'none'}${m?.report ? `, "${m.report}"` : ''})`,
        };
      },
    },
  ],
  timeoutMs: 30_000,
});

/** The forger's EBADF/ENOTSOCK count as the kernel kept it is at least what the forger tallied (poll's POLLNVAL is a success to the kernel). */
function kernelAgrees(run: ScenarioRun) {
  const r = valueOf<HandleForgerResult>(run, 'forger');
  const calls = run.outcomes.forger?.final?.calls;
  if (!r || !calls) return { pass: false, detail: 'no result or no kernel count for the forger' };
  const tallied = merged(r.attempts, KINDS).outcomes;
  const wanted = (tallied.EBADF ?? 0) + (tallied.ENOTSOCK ?? 0);
  let counted = 0;
  for (const outcomes of Object.values(calls)) counted += (outcomes.EBADF ?? 0) + (outcomes.ENOTSOCK ?? 0);
  return { pass: wanted > 0 && counted >= wanted, detail: `forger tallied ${wanted} bad-handle refusals; the kernel counted ${counted}` };
}
