/**
 * The host's end of a kernel worker: requests by id, answers and events
 * routed to the machine they concern. A worker holds one machine, or in
 * lockstep every machine of the run (one conductor, one virtual clock); it
 * is stopped when the last of its machines shuts down.
 */
import { Worker, type TransferListItem } from 'node:worker_threads';
import { KERNEL_WORKER_URL, type ControlReply, type ControlRequest, type KernelWorkerData } from '@moat/kernel';

type DistributiveOmit<T, K extends keyof any> = T extends unknown ? Omit<T, K> : never;
export type KernelRequest = DistributiveOmit<ControlRequest, 'id'>;
export type KernelEvent = Extract<ControlReply, { event: string }>;

export class KernelWorker {
  private readonly worker: Worker;
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly listeners = new Map<string, (event: KernelEvent) => void>();
  private nextId = 1;
  private users = 0;
  /** Set once the worker died: every call fails with it from then on. */
  error: Error | undefined;

  /** Starts the worker with its first machine. */
  constructor(first: KernelWorkerData) {
    this.worker = new Worker(KERNEL_WORKER_URL, { workerData: first });
    this.worker.on('message', (m: ControlReply) => {
      if ('event' in m) return this.listeners.get(m.machine)?.(m);
      const call = this.calls.get(m.id);
      this.calls.delete(m.id);
      if (m.error !== undefined) call?.reject(new Error(m.error));
      else call?.resolve(m.value);
    });
    this.worker.on('error', (err) => {
      this.error = err;
      for (const c of this.calls.values()) c.reject(err);
      this.calls.clear();
    });
  }

  /** A machine of this worker: its events go to `onEvent`; `release` once it is shut down. */
  use(machine: string, onEvent: (event: KernelEvent) => void): void {
    this.users++;
    this.listeners.set(machine, onEvent);
  }

  request(req: KernelRequest, transfer: TransferListItem[] = []): Promise<unknown> {
    if (this.error) return Promise.reject(this.error);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  /** Stops the worker once none of its machines is left. */
  async release(machine: string): Promise<void> {
    this.listeners.delete(machine);
    if (--this.users === 0) await this.worker.terminate();
  }
}
