/** The host's control protocol with a kernel worker (the host is trusted; domains never see it). */
import type { MessagePort } from 'node:worker_threads';
import type { Limits } from './account.js';

export interface KernelWorkerData {
  poolBytes?: number;
  malformedLimit?: number;
}

export type ControlRequest =
  | { id: number; op: 'attach'; name: string; port: MessagePort; signal: SharedArrayBuffer; limits?: Partial<Limits> }
  | { id: number; op: 'detach'; name: string; reason: string }
  | { id: number; op: 'stats' }
  | { id: number; op: 'shutdown' };

export type ControlReply =
  | { id: number; value: unknown; error?: undefined }
  | { id: number; error: string; value?: undefined }
  | { event: 'oops'; domain: string; reason: string };
