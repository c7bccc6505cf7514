/** A small report with a timeline, shaped like an ota-isolation run's, for the report-file tests. */
import type { ScenarioReport } from '../src/report.js';
import type { TimelineEvent } from '../src/timeline.js';

export const CONN = '10.0.0.1:24681 > 10.0.0.2:24680';

export function fixtureEvents(): TimelineEvent[] {
  const conn = { conn: CONN };
  return [
    { ts: 0, track: 'kernel:device', kind: 'lifecycle', name: 'boot' },
    { ts: 0, track: 'kernel:server', kind: 'lifecycle', name: 'boot' },
    { ts: 100, track: 'update-server', kind: 'lifecycle', name: 'spawn' },
    { ts: 120, dur: 10, track: 'update-server', kind: 'syscall', name: 'socket', args: { result: 'OK', handle: 1 } },
    { ts: 140, dur: 900, track: 'update-server', kind: 'syscall', name: 'accept', args: { result: 'OK' } },
    { ts: 200, track: 'ota', kind: 'lifecycle', name: 'spawn' },
    { ts: 210, dur: 400, track: 'ota', kind: 'syscall', name: 'connect', args: { result: 'OK' } },
    { ts: 215, track: 'kernel:device', kind: 'transition', name: 'CLOSED -> SYN_SENT', args: conn },
    { ts: 220, track: 'link:device.eth0 -> server.eth0', kind: 'packet', name: 'tcp 10.0.0.1:24681 > 10.0.0.2:24680 [S]', args: { len: 60 } },
    { ts: 420, track: 'link:server.eth0 -> device.eth0', kind: 'packet', name: 'tcp 10.0.0.2:24680 > 10.0.0.1:24681 [S.]', args: { len: 60 } },
    { ts: 430, track: 'link:server.eth0 -> device.eth0', kind: 'fault', name: 'duplicate' },
    { ts: 600, track: 'kernel:device', kind: 'transition', name: 'SYN_SENT -> ESTABLISHED', args: conn },
    { ts: 700, dur: 50, track: 'third-party', kind: 'syscall', name: 'bind', args: { result: 'EADDRINUSE', port: 24681 } },
    { ts: 760, dur: 5, track: 'third-party', kind: 'syscall', name: 'close', args: { result: 'EBADF', handle: 4096 } },
    // Promise API: a poll and a recv pending at once on one domain.
    { ts: 800, dur: 300, track: 'ota', kind: 'syscall', name: 'poll', args: { result: 'OK' } },
    { ts: 850, dur: 100, track: 'ota', kind: 'syscall', name: 'recv', args: { result: 'OK', bytes: 1448 } },
    { ts: 900, track: 'ota', kind: 'log', name: 'image complete' },
    { ts: 1000, track: 'third-party', kind: 'lifecycle', name: 'throw', args: { error: 'deliberate' } },
    { ts: 1100, track: 'kernel:device', kind: 'transition', name: 'ESTABLISHED -> FIN_WAIT_1', args: conn },
  ];
}

export function fixtureReport(events: TimelineEvent[] = fixtureEvents()): ScenarioReport {
  const zero = { handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, pendingCalls: 0, streamBytes: 0 };
  const domain = (name: string, role: string) => ({
    name,
    role,
    status: 'returned' as const,
    attempts: [],
    calls: { socket: { OK: 1 } },
    malformedFrames: 0,
    final: zero,
    restarts: 0,
  });
  return {
    scenario: 'ota-isolation',
    description: 'fixture',
    seed: 7,
    durationMs: 1.5,
    domains: [
      domain('update-server', 'update server'),
      domain('ota', 'OTA updater'),
      {
        ...domain('third-party', 'hostile third-party library'),
        status: 'threw',
        error: 'deliberate',
        attempts: [{ name: 'forged handles', tries: 2, outcomes: { EBADF: 2 }, breaches: 0 }],
        calls: { bind: { EADDRINUSE: 1 }, close: { EBADF: 1 } },
      },
    ],
    kernel: {
      internalErrors: 0,
      leaks: [],
      pool: { capacityBytes: 1 << 20, inUseBytes: 0, inUseBuffers: 0, allocations: 12, failures: 0, reservedBytes: 0, injectedFailures: 0 },
      stack: { 'drop.udp.noSocket': 3 },
    },
    links: [
      { name: 'device.eth0 -> server.eth0', faults: { loss: 0.02 }, stats: { offered: 2, delivered: 2 } },
      { name: 'server.eth0 -> device.eth0', faults: { loss: 0.02 }, stats: { offered: 2, delivered: 2, duplicated: 1 } },
    ],
    timeline: { events, dropped: 0, hash: 'ab'.repeat(32) },
    verdicts: [
      { name: 'OTA image intact', pass: true, detail: 'sha matches' },
      { name: 'Every hostile call refused', pass: false, detail: '1 breach' },
    ],
    passed: false,
  };
}
