/** The host's control protocol with a kernel worker (the host is trusted; domains never see it). */
import type { MessagePort } from 'node:worker_threads';
import type { LinkFaults } from '@moat/netstack';
import type { Limits } from './account.js';
import type { AllocationFault } from './buffer-pool.js';
import type { FaultRequest } from './faults.js';
import type { UdpWireConfig } from './drivers/udp-wire.js';
import type { InterfaceSpec } from './kernel.js';
import type { RecordedTimeline } from './recorder.js';

export interface KernelWorkerData {
  machineName?: string;
  poolBytes?: number;
  malformedLimit?: number;
  interfaces?: InterfaceSpec[];
  gateway?: string;
  captureDir?: string;
  /** Record the event trace (default off: KernelOptions.trace says why). */
  trace?: boolean;
  /** Most events the trace keeps (default 100,000). */
  traceEvents?: number;
  /** Also trace every frame on every interface. */
  tracePackets?: boolean;
  /** Deterministic mode (KernelOptions.lockstep): the worker's machines share one conductor, and links between them are in-worker (the link op). */
  lockstep?: boolean;
  /** The run's seed: in lockstep, the TCP ISN secret derives from it. */
  seed?: number;
}

/** The `timeline` op's answer. */
export interface KernelTimeline extends RecordedTimeline {
  /**
   * When the events' time zero was, in milliseconds since the epoch:
   * performance.timeOrigin + performance.now() in the kernel's worker, which
   * every thread of the process reads on the same base, so the host can put
   * several kernels on one clock.
   */
  startedAtEpochMs: number;
  /** Whether this kernel records at all. */
  recording: boolean;
  /** Lockstep: the events' times are virtual ms from 0, which the host takes as the run's own time zero. */
  virtual?: boolean;
}

/** How an interface is wired: to another kernel by a simulated link, or to a real peer by UDP datagrams. */
export type WireSpec =
  | { kind: 'sim'; port: MessagePort; faults: LinkFaults; seed: number }
  | ({ kind: 'udp' } & UdpWireConfig);

/** Which machine of the worker a request is for (default: the one the worker was started with). */
type ForMachine = { machine?: string };

export type ControlRequest =
  /** Lockstep: another machine in this worker, under its conductor; answers with the machine's name. */
  | { id: number; op: 'addMachine'; options: KernelWorkerData }
  /** Lockstep: joins two interfaces of this worker's machines by a simulated link, one seed per direction. */
  | { id: number; op: 'link'; ends: [{ machine: string; iface: string }, { machine: string; iface: string }]; faults: LinkFaults; seeds: [number, number] }
  | (ForMachine & MachineRequest);

type MachineRequest =
  /** `reportsRest` (lockstep): the domain's channel says when it waits (a worker's: PortTransport in @moat/libc). */
  | { id: number; op: 'attach'; name: string; port: MessagePort; signal: SharedArrayBuffer; limits?: Partial<Limits>; watchdogMs?: number; faults?: FaultRequest[]; reportsRest?: boolean }
  | ({ id: number; op: 'fault'; name: string } & FaultRequest)
  | ({ id: number; op: 'poolFault' } & AllocationFault)
  /** `restartAfterMs` (lockstep): its supervisor starts it again after this much virtual time. */
  | { id: number; op: 'detach'; name: string; reason: string; restartAfterMs?: number }
  | { id: number; op: 'wire'; iface: string; wire: WireSpec }
  /**
   * Lockstep: `attaches`, domains the host will attach (at once, or once another domain logs a line
   * matching `after.log`: the clock waits for each when it is due); `awaited`: the domains on this
   * machine the run waits for.
   */
  | { id: number; op: 'expect'; attaches?: { name: string; after?: { domain: string; log: string } }[]; awaited?: string[] }
  /** Lockstep: a domain announced with expect will not attach after all (it could not start). */
  | { id: number; op: 'cancelAttach'; name: string }
  /** Lockstep: stop the clock and serve no more; the host is about to kill every domain left. */
  | { id: number; op: 'hold' }
  | { id: number; op: 'stats' }
  | { id: number; op: 'timeline' }
  | { id: number; op: 'shutdown' };

export type ControlReply =
  | { id: number; value: unknown; error?: undefined }
  | { id: number; error: string; value?: undefined }
  | { event: 'oops'; machine: string; domain: string; reason: string }
  /** Kill this domain: a planned 'kill' fault came due, or its watchdog fired. */
  | { event: 'kill'; machine: string; domain: string; reason: string };
