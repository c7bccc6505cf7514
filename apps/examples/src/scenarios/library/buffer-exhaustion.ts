/**
 * buffer-exhaustion: a neighbour exhausts the device kernel's packet-buffer
 * pool while two OTAs download the same image over UDP, where every chunk
 * that arrives needs a pool buffer: one OTA has a reserved minimum, the other
 * has none. The one with the reservation must finish; the one without shows
 * what the reservation is for.
 */
import { defineScenario, type DomainDefinition } from '@moat/sim';
import type { PoolHogArgs, PoolHogState } from '../../programs/pool-hog.js';
import type { PoolOtaArgs, PoolOtaResult } from '../../programs/pool-ota.js';
import type { UpdateServerArgs } from '../../programs/update-server.js';
import { CLEAN_LINK, DEVICE, program, SERVER, valueOf } from './common.js';

const POOL_BYTES = 1 << 20;
/** The OTA's window of 16 chunks (4 KiB buffers each) and its requests fit well inside this. */
const RESERVED = 160 << 10;
/** A probe may find this much beyond the reservation and still call the pool exhausted (two probe buffers). */
const SLACK = 4096;
const IMAGE_BYTES = 512 << 10;
/** Chunks of 4091 bytes make 4096-byte datagrams: one 4 KiB buffer each. */
const CHUNK_BYTES = 4091;

function server(name: string, port: number): DomainDefinition {
  return {
    name,
    role: 'update server (UDP)',
    machine: 'server',
    program: program('update-server'),
    args: ({ seed }: { seed: number }) => ({ port, imageBytes: IMAGE_BYTES, chunkBytes: CHUNK_BYTES, seed }) satisfies UpdateServerArgs,
    awaited: false,
  };
}

function ota(name: string, port: number, reserved: number, after: { domain: string; log: string }, outlive?: string): DomainDefinition {
  return {
    name,
    role: reserved ? `OTA updater, ${reserved >> 10} KiB reserved` : 'OTA updater, no reservation',
    machine: 'device',
    program: program('pool-ota'),
    args: {
      server: { addr: '10.0.0.2', port },
      window: 16,
      recvTimeoutMs: 40,
      reservedBytes: reserved,
      slackBytes: SLACK,
      waitMs: 5000,
      giveUpMs: 1000,
      outlive,
    } satisfies PoolOtaArgs,
    limits: reserved ? { reservedBufferBytes: reserved } : undefined,
    startAfter: after,
  };
}

export default defineScenario({
  name: 'buffer-exhaustion',
  description:
    `A neighbour fills the device kernel's ${POOL_BYTES >> 20} MiB packet-buffer pool with datagrams queued in its own sockets until ENOBUFS, and keeps ` +
    `it full, while two OTAs download the same image over UDP (every chunk waits in a pool buffer): one with ${RESERVED >> 10} KiB reserved, one without. ` +
    'The reserved one must finish intact with every send accepted; the other is starved, which is what the reservation is for.',
  machines: [{ ...DEVICE, poolBytes: POOL_BYTES }, SERVER],
  links: [CLEAN_LINK],
  domains: [
    server('update-server', 24680),
    server('update-server-2', 24690),
    // It outlives the unreserved one: its exit frees its reservation, which would end the other's starvation.
    ota('ota', 24680, RESERVED, { domain: 'update-server-2', log: '^serving' }, 'ota-unreserved'),
    ota('ota-unreserved', 24690, 0, { domain: 'ota', log: '^ready' }),
    {
      name: 'hog',
      role: 'neighbour exhausting the pool',
      machine: 'device',
      program: program('pool-hog'),
      args: { sockets: 24, pressMs: 5 } satisfies PoolHogArgs,
      startAfter: { domain: 'ota-unreserved', log: '^ready' },
      awaited: false,
    },
  ],
  expect: [
    {
      name: 'The OTA with a reservation finished',
      // Its chunks need pool buffers the neighbour would otherwise take: without the reservation
      // honoured it would stall and give up, as the unreserved one does.
      check: (run) => {
        const r = valueOf<PoolOtaResult>(run, 'ota');
        if (!r) return { pass: false, detail: `no result (${run.outcomes.ota?.status}: ${run.outcomes.ota?.error})` };
        return {
          pass: r.completed && r.intact,
          detail: `${r.chunksReceived}/${r.chunks} chunks (${r.bytes} bytes) in ${r.ms} ms, SHA-256 ${r.intact ? 'matches' : 'DOES NOT match'}, ${r.timeouts} receive timeouts`,
        };
      },
    },
    {
      name: 'The neighbour got ENOBUFS',
      // It must have taken the pool (not just its own quota, which is larger than the pool) and
      // been refused: exhaustion fails the domain that exhausted it.
      check: (run) => {
        const h = valueOf<PoolHogState>(run, 'hog');
        if (!h) return { pass: false, detail: 'the neighbour published nothing' };
        const wanted = Math.floor(0.75 * (POOL_BYTES - RESERVED));
        return {
          pass: h.phase === 'exhausted' && h.enobufs > 0 && h.heldBytes >= wanted,
          detail: `${h.enobufs} sends refused with ENOBUFS over ${h.fills} fills; it held ${h.heldBuffers} buffers (${h.heldBytes} B) of the ${POOL_BYTES} B pool (at least ${wanted} B expected)`,
        };
      },
    },
    {
      name: 'The reservation held',
      // The pool beyond the reservation was full when the download began and when it ended (the
      // probe could hold no more than the reservation), and yet not one of its sends was refused.
      check: (run) => {
        const r = valueOf<PoolOtaResult>(run, 'ota');
        const failures = run.kernels.device?.pool.failures ?? 0;
        if (!r) return { pass: false, detail: 'no result' };
        return {
          pass: r.exhaustedAtStart && r.exhaustedAtEnd && r.enobufs === 0 && r.probes.first > RESERVED + SLACK && failures > 0,
          detail:
            `probe held ${r.probes.first} B before the neighbour, ${r.probes.start} B when the download began (after ${r.waitedMs} ms) and ${r.probes.end} B at its end ` +
            `(reservation ${RESERVED} B); its download sends refused: ${r.enobufs}; pool allocation failures in the kernel: ${failures}`,
        };
      },
    },
    {
      name: 'Without a reservation the same download starved',
      // The comparison: same image, same moment, same pool, no reservation. If this one finished too,
      // the neighbour never really held the pool and the verdicts above prove nothing.
      check: (run) => {
        const r = valueOf<PoolOtaResult>(run, 'ota-unreserved');
        const reserved = valueOf<PoolOtaResult>(run, 'ota');
        if (!r) return { pass: false, detail: `no result (${run.outcomes['ota-unreserved']?.status}: ${run.outcomes['ota-unreserved']?.error})` };
        return {
          pass: !r.completed && r.exhaustedAtStart && (r.enobufs > 0 || r.timeouts > 0) && !!reserved?.completed,
          detail:
            `${r.completed ? 'completed' : 'gave up'} with ${r.chunksReceived}/${r.chunks} chunks; ${r.enobufs} sends refused with ENOBUFS, ${r.timeouts} receive timeouts; ` +
            `its probe held ${r.probes.start} B when it began`,
        };
      },
    },
  ],
  timeoutMs: 30_000,
});
