/** The host's control protocol with a kernel worker (the host is trusted; domains never see it). */
import type { MessagePort } from 'node:worker_threads';
import type { LinkFaults } from '@moat/netstack';
import type { Limits } from './account.js';
import type { UdpWireConfig } from './drivers/udp-wire.js';
import type { InterfaceSpec } from './kernel.js';

export interface KernelWorkerData {
  machineName?: string;
  poolBytes?: number;
  malformedLimit?: number;
  interfaces?: InterfaceSpec[];
  gateway?: string;
  captureDir?: string;
}

/** How an interface is wired: to another kernel by a simulated link, or to a real peer by UDP datagrams. */
export type WireSpec =
  | { kind: 'sim'; port: MessagePort; faults: LinkFaults; seed: number }
  | ({ kind: 'udp' } & UdpWireConfig);

export type ControlRequest =
  | { id: number; op: 'attach'; name: string; port: MessagePort; signal: SharedArrayBuffer; limits?: Partial<Limits> }
  | { id: number; op: 'detach'; name: string; reason: string }
  | { id: number; op: 'wire'; iface: string; wire: WireSpec }
  | { id: number; op: 'stats' }
  | { id: number; op: 'shutdown' };

export type ControlReply =
  | { id: number; value: unknown; error?: undefined }
  | { id: number; error: string; value?: undefined }
  | { event: 'oops'; domain: string; reason: string };
