/**
 * use-after-close: a domain keeps using a closed socket's handle while a new
 * socket holds its slot; the old handle must never reach the new object.
 */
import { defineScenario } from '@moat/sim';
import type { UseAfterCloseArgs, UseAfterCloseResult } from '../../programs/use-after-close.js';
import { merged, outcomesText, program, valueOf } from './common.js';

const result = (run: Parameters<typeof valueOf>[0]) => valueOf<UseAfterCloseResult>(run, 'reuser');

export default defineScenario({
  name: 'use-after-close',
  description:
    'A domain closes sockets (UDP, a TCP listener, a connected TCP socket) and keeps using their handles while new sockets take the same slots, ' +
    'calls pipelined with no wait and with a receive parked on the socket when it closes. Every use of an old handle must be refused (EBADF) ' +
    'and the new socket must be exactly as it was set up.',
  machines: [{ name: 'device' }],
  domains: [{ name: 'reuser', role: 'closes and reuses', machine: 'device', program: program('use-after-close'), args: { rounds: 4 } satisfies UseAfterCloseArgs }],
  expect: [
    {
      name: 'Every use of a closed handle refused',
      // A table without generations would hand the old number to the new socket: OK results here.
      check: (run) => {
        const r = result(run);
        if (!r) return { pass: false, detail: `the domain left no result (${run.outcomes.reuser?.error ?? run.outcomes.reuser?.status})` };
        const all = merged(r.attempts);
        const other = Object.keys(all.outcomes).filter((k) => k !== 'EBADF' && k !== 'POLLNVAL');
        return { pass: all.tries > 0 && all.breaches === 0 && other.length === 0, detail: `${all.tries} calls on closed handles: ${outcomesText(all.outcomes)}` };
      },
    },
    {
      name: 'The new socket took the old slot every round',
      // Without reuse of the slot the rounds would prove nothing about generations.
      check: (run) => {
        const r = result(run);
        if (!r) return { pass: false, detail: 'no result' };
        const rows = Object.entries(r.rounds);
        return {
          pass: rows.every(([, x]) => x.rounds > 0 && x.sameSlot === x.rounds),
          detail: rows.map(([k, x]) => `${k} ${x.sameSlot}/${x.rounds}`).join(', '),
        };
      },
    },
    {
      name: 'The old handle never reached the new object',
      // Its queued data, options, listening state and peer are checked after the stale calls.
      check: (run) => {
        const r = result(run);
        if (!r) return { pass: false, detail: 'no result' };
        const rows = Object.entries(r.rounds);
        return {
          pass: rows.every(([, x]) => x.untouched === x.rounds) && r.failures.length === 0,
          detail: `${rows.map(([k, x]) => `${k} ${x.untouched}/${x.rounds} untouched`).join(', ')}${r.failures.length ? `; ${r.failures.slice(0, 3).join('; ')}` : ''}`,
        };
      },
    },
    {
      name: 'A receive parked on the closed socket ended with ECONNRESET',
      // It must end when its socket goes, never wake later with what arrives for the new socket.
      check: (run) => {
        const r = result(run);
        const endings = r?.parkedEndings ?? {};
        const total = Object.values(endings).reduce((a, b) => a + b, 0);
        return { pass: total > 0 && endings.ECONNRESET === total, detail: `parked receives ended: ${outcomesText(endings)}` };
      },
    },
  ],
  timeoutMs: 30_000,
});
