/**
 * The three deaths in the middle of a transfer (crash-mid-transfer,
 * hang-mid-transfer, oom-mid-transfer): one scenario each, built here. A
 * third-party library on the device takes a share of everything the kernel
 * accounts while the OTA is halfway through its TCP download, then dies; the
 * OTA waits on a connection to it until the death reaches it as a reset,
 * then finishes its download.
 */
import { defineScenario, type DomainStatus, type Scenario } from '@moat/sim';
import type { DoomedArgs } from '../../programs/doomed.js';
import type { OtaStreamResult } from '../../programs/ota-stream.js';
import { CLEAN_LINK, DEVICE, midwayOta, otaIntact, PORTS, program, releasedClean, SERVER, updateServer, valueOf } from './common.js';

type Mode = DoomedArgs['mode'];

/** When the watchdog kills the hung library, from its start: well after it reaches its hang, even on a busy machine. */
const WATCHDOG_MS = 3000;
const HEAP_MB = 32;

const WHAT: Record<Mode, { name: string; dies: string; status: DomainStatus; phase: string }> = {
  crash: { name: 'crash-mid-transfer', dies: 'throws', status: 'threw', phase: 'crashing' },
  hang: { name: 'hang-mid-transfer', dies: `blocks for ever in a receive, until a watchdog kills it (${WATCHDOG_MS} ms after it started)`, status: 'killed', phase: 'hanging' },
  oom: { name: 'oom-mid-transfer', dies: `allocates until its ${HEAP_MB} MB heap limit stops it`, status: 'out-of-memory', phase: 'exhausting its heap' },
};

interface Holding {
  phase: string;
  holding: { handles: number; sockets: number; buffers: number; bufferBytes: number; streamBytes: number; pendingCalls: number };
}

export function deathScenario(mode: Mode): Scenario {
  const what = WHAT[mode];
  return defineScenario({
    name: what.name,
    description:
      `A third-party library on the device, started by the OTA halfway through its TCP download, takes sockets, queued datagrams, an unread ` +
      `connection and a parked call, then ${what.dies}. The OTA's download must complete intact, the OTA must see the death as a reset, ` +
      'and the dead library must hold nothing afterwards.',
    machines: [DEVICE, SERVER],
    links: [CLEAN_LINK],
    domains: [
      updateServer(512 << 10),
      {
        name: 'third-party',
        role: `third-party library (${mode})`,
        machine: 'device',
        program: program('doomed'),
        args: { controlPort: PORTS.neighbour, mode } satisfies DoomedArgs,
        startAfter: { domain: 'update-server', log: '^serving' },
        ...(mode === 'oom' ? { heapMb: HEAP_MB } : {}),
      },
      midwayOta('third-party'),
    ],
    faults: mode === 'hang' ? [{ domain: 'third-party', kind: 'kill', afterMs: WATCHDOG_MS }] : [],
    expect: [
      { name: "OTA's download intact", check: (run) => otaIntact(run) },
      {
        name: `The library died mid-transfer (${what.status})`,
        // It must have died the planned way while holding a share of every kind (else nothing was
        // tested); for the hang, the watchdog must have found it hung, not still starting.
        check: (run) => {
          const out = run.outcomes['third-party'];
          const last = valueOf<Holding>(run, 'third-party');
          const h = last?.holding;
          const held = !!h && h.handles >= 8 && h.buffers > 0 && h.streamBytes > 0 && h.pendingCalls >= 1;
          const pass = out?.status === what.status && last?.phase === what.phase && held;
          return {
            pass,
            detail:
              `${out?.status ?? 'never ran'}${out?.error ? ` (${out.error.slice(0, 120)})` : ''}, last seen ${last?.phase ?? 'nowhere'}` +
              (h ? `, holding ${h.handles} handles, ${h.buffers} buffers (${h.bufferBytes} B), ${h.streamBytes} stream bytes, ${h.pendingCalls} parked calls` : ''),
          };
        },
      },
      {
        name: 'The OTA saw the death as a reset, mid-transfer',
        // The OTA waited on its connection to the library with half its image in: a death that
        // did not reset the library's connections would leave it waiting (then 'timeout').
        check: (run) => {
          const r = valueOf<OtaStreamResult>(run, 'ota');
          const m = r?.midway;
          return {
            pass: m?.ending === 'ECONNRESET' && m.at < (r?.bytes ?? 0),
            detail: m ? `its connection to the library ended ${m.ending} after ${m.waitedMs} ms, with ${m.at} of ${r?.bytes} bytes in` : 'the OTA never reached the middle',
          };
        },
      },
      {
        name: "The dead library's accounting is zero",
        // What it held must all come back: sockets closed, buffers returned, stream bytes and
        // parked calls dropped, and nothing of it in the pool.
        check: (run) => {
          const r = releasedClean(run.outcomes['third-party']);
          const device = run.kernels.device;
          const pool = device ? `${device.pool.inUseBuffers} buffers in the device's pool at the end, ${device.leaks.length} leaks` : 'no device kernel';
          return { pass: r.pass && !!device && device.pool.inUseBuffers === 0 && device.leaks.length === 0, detail: `${r.detail}; ${pool}` };
        },
      },
    ],
    timeoutMs: 30_000,
  });
}
