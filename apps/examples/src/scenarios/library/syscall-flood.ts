/**
 * syscall-flood: two neighbours flood the kernel with null syscalls (one
 * blocking call after another, and thousands of asynchronous ones kept in
 * flight) while the OTA runs a request/response loop; the OTA's syscall
 * latency with and without the flood is reported and judged (invariant 7).
 */
import { defineScenario } from '@moat/sim';
import type { EchoArgs } from '../../programs/echo.js';
import type { FloodOtaArgs, FloodOtaResult } from '../../programs/flood-ota.js';
import type { FlooderArgs } from '../../programs/flooder.js';
import { program, valueOf } from './common.js';

const ECHO_PORT = 24700;
const SYNC_PORT = 24701;
const ASYNC_PORT = 24702;
/** Null requests the async flooder keeps in flight (between half and all of it), within a pending-call share raised to allow it. */
const IN_FLIGHT = 3000;
const PENDING_SHARE = 4096;

/**
 * The bounds on the OTA's flooded latency, from measurements on the 2-core
 * machine this was written on (docs/scenarios.md has the figures): p99 within
 * P99_FACTOR times its quiet p99 plus P99_MS, p50 within P50_FACTOR times its
 * quiet p50 plus P50_MS. The allowances cover the cores the flood itself
 * keeps busy (a scheduling delay of the OTA's thread costs milliseconds), not
 * a queue of the flooder's calls in front of each of the OTA's.
 */
export const P99_FACTOR = 3;
export const P99_MS = 20;
export const P50_FACTOR = 4;
export const P50_MS = 1;

const result = (run: Parameters<typeof valueOf>[0]) => valueOf<FloodOtaResult>(run, 'ota');

export default defineScenario({
  name: 'syscall-flood',
  description:
    `Two neighbours flood the kernel with null syscalls, one blocking call after another and ${IN_FLIGHT / 2} to ${IN_FLIGHT} asynchronous ones in flight at all times, while ` +
    'the OTA runs a request/response loop with an echo service (a null call, a send, the echo), timing each call in quiet and flooded phases, ' +
    `alternating. Fair serving (invariant 7) must keep its flooded p99 within ${P99_FACTOR}x its quiet p99 + ${P99_MS} ms, and its p50 within ` +
    `${P50_FACTOR}x + ${P50_MS} ms.`,
  machines: [{ name: 'device' }],
  domains: [
    { name: 'echo', role: 'echo service', machine: 'device', program: program('echo'), args: { port: ECHO_PORT } satisfies EchoArgs, awaited: false },
    {
      name: 'flood-sync',
      role: 'flooder, blocking calls',
      machine: 'device',
      program: program('flooder'),
      args: { controlPort: SYNC_PORT, mode: 'sync' } satisfies FlooderArgs,
      startAfter: { domain: 'echo', log: '^loaded' },
    },
    {
      name: 'flood-async',
      role: `flooder, up to ${IN_FLIGHT} calls in flight`,
      machine: 'device',
      program: program('flooder'),
      args: { controlPort: ASYNC_PORT, mode: 'async', inFlight: IN_FLIGHT } satisfies FlooderArgs,
      limits: { maxPendingCalls: PENDING_SHARE },
      startAfter: { domain: 'flood-sync', log: '^loaded' },
    },
    {
      name: 'ota',
      role: 'OTA updater (request/response)',
      machine: 'device',
      program: program('flood-ota'),
      args: {
        echo: { addr: '127.0.0.1', port: ECHO_PORT },
        flooders: [
          { addr: '127.0.0.1', port: SYNC_PORT },
          { addr: '127.0.0.1', port: ASYNC_PORT },
        ],
        iterations: 150,
        phaseMs: 1000,
        warmup: 200,
      } satisfies FloodOtaArgs,
      startAfter: { domain: 'flood-async', log: '^loaded' },
    },
  ],
  expect: [
    {
      name: 'The flood was a flood',
      // Unless the neighbours really kept the kernel busy, the latencies below prove nothing.
      check: (run) => {
        const r = result(run);
        if (!r) return { pass: false, detail: `no result (${run.outcomes.ota?.status}: ${run.outcomes.ota?.error})` };
        const rates = r.flooders.map((f) => `${f.mode} ${Math.round(f.calls / Math.max(0.001, f.ms / 1000))} calls/s (${f.calls} in ${Math.round(f.ms)} ms${f.eagain ? `, ${f.eagain} EAGAIN` : ''})`);
        const calls = r.flooders.reduce((n, f) => n + f.calls, 0);
        const timed = r.flood.syscall.samples;
        return { pass: r.flooders.length === 2 && timed > 0 && calls >= 20 * timed, detail: `${rates.join(', ')}; ${calls} flood calls against the OTA's ${timed} timed calls` };
      },
    },
    {
      name: "OTA's p99 syscall latency within the bound under the flood",
      // A kernel that let the flooder's queue go ahead of the OTA's calls (all of it, or a long
      // stretch of it before it looks at new requests again) adds that queue to every call.
      check: (run) => {
        const r = result(run);
        if (!r) return { pass: false, detail: 'no result' };
        const q = r.quiet.syscall;
        const f = r.flood.syscall;
        const bound = Math.round(P99_FACTOR * q.p99 + P99_MS * 1000);
        return {
          pass: f.p99 <= bound && r.wrongEchoes === 0,
          detail:
            `syscall p99: quiet ${q.p99} us, flooded ${f.p99} us, bound ${bound} us (p50 quiet ${q.p50}, flooded ${f.p50}); ` +
            `round trip p50/p99: quiet ${r.quiet.roundTrip.p50}/${r.quiet.roundTrip.p99} us, flooded ${r.flood.roundTrip.p50}/${r.flood.roundTrip.p99} us; ` +
            `${q.samples} quiet and ${f.samples} flooded samples, ${r.wrongEchoes} wrong echoes`,
        };
      },
    },
    {
      name: "OTA's p50 syscall latency within the bound under the flood",
      // The median is the steady cost of the flood to the OTA, where the p99 also holds the machine's
      // scheduling noise: it is the sharper test of how far behind the flood the OTA is served.
      check: (run) => {
        const r = result(run);
        if (!r) return { pass: false, detail: 'no result' };
        const q = r.quiet.syscall;
        const f = r.flood.syscall;
        const bound = Math.round(P50_FACTOR * q.p50 + P50_MS * 1000);
        return { pass: f.p50 <= bound, detail: `syscall p50: quiet ${q.p50} us, flooded ${f.p50} us, bound ${bound} us (null ${r.flood.null.p50} us, send ${r.flood.send.p50} us flooded)` };
      },
    },
  ],
  timeoutMs: 40_000,
  realTime: "its verdicts judge the OTA's syscall latency and the flood's rate, which are 0 on lockstep's virtual clock",
});
