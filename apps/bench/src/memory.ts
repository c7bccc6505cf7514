/**
 * Memory readings for the scale figures, taken from the host. Each reading
 * first has every thread of the process collect its garbage (worker threads
 * through the inspector's NodeWorker domain, the host through its own
 * session), so that a delta between two readings is what stayed alive, not
 * what happened to be uncollected. It then reads the process's rss, and the
 * heap of each kernel worker (found by its module URL) from inside that
 * worker. This needs no change to the kernel; a `memory` control op would do
 * the kernel's part without the inspector.
 *
 * The session is in-process: the inspector opens no port, and it is attached
 * only for the moment of a reading (enable, collect, read, disable).
 */
import { Session } from 'node:inspector/promises';
import { KERNEL_WORKER_URL } from '@moat/kernel';

export interface MemoryReading {
  /** The whole process's resident set, in bytes. */
  rss: number;
  /** Each kernel worker's JS heap in use and its external (ArrayBuffer) memory, in bytes; empty without the inspector. */
  kernels: { heapUsed: number; external: number }[];
  /** Whether every thread collected its garbage first (false: the inspector was not available, plain rss). */
  collected: boolean;
}

interface Attached {
  sessionId: string;
  workerInfo: { url: string };
}

/** What a worker's session answers to one inspector command. */
interface WorkerReply {
  id?: number;
  result?: { result?: { value?: unknown } };
  error?: { message: string };
}

/** How long a thread may take to answer a command (a collection of a big heap takes a while). */
const REPLY_TIMEOUT_MS = 15_000;

export class MemoryProbe {
  private attached: Attached[] = [];
  private readonly pending = new Map<number, (r: WorkerReply) => void>();
  private nextId = 1;

  private constructor(private readonly session: Session | undefined) {
    session?.on('NodeWorker.attachedToWorker', ({ params }) => this.attached.push(params as Attached));
    session?.on('NodeWorker.receivedMessageFromWorker', ({ params }) => {
      const reply = JSON.parse((params as { message: string }).message) as WorkerReply;
      if (reply.id !== undefined) this.pending.get(reply.id)?.(reply);
    });
  }

  /** A probe with the inspector when this Node has one; without it, readings are plain rss. */
  static open(): MemoryProbe {
    try {
      const session = new Session();
      session.connect();
      return new MemoryProbe(session);
    } catch {
      return new MemoryProbe(undefined);
    }
  }

  async read(): Promise<MemoryReading> {
    const session = this.session;
    if (!session) return { rss: process.memoryUsage().rss, kernels: [], collected: false };
    this.attached = [];
    // Every existing worker is attached (and its event delivered) before enable answers.
    await session.post('NodeWorker.enable', { waitForDebuggerOnStart: false });
    try {
      const workers = this.attached;
      // A collection runs on the thread's event loop: a thread blocked in Atomics.wait (a domain in a
      // blocking call) does not answer, so the bench's programs wait for the host's bell without blocking.
      await Promise.all(workers.map((w) => this.call(w.sessionId, 'HeapProfiler.collectGarbage', {}, w.workerInfo.url)));
      await session.post('HeapProfiler.collectGarbage');
      const kernels = await Promise.all(
        workers
          .filter((w) => w.workerInfo.url === KERNEL_WORKER_URL.href)
          .map(async (w) => {
            const r = await this.call(w.sessionId, 'Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
            const usage = JSON.parse(String(r.result?.result?.value)) as NodeJS.MemoryUsage;
            return { heapUsed: usage.heapUsed, external: usage.external };
          }),
      );
      return { rss: process.memoryUsage().rss, kernels, collected: true };
    } finally {
      await session.post('NodeWorker.disable');
    }
  }

  close(): void {
    this.session?.disconnect();
  }

  /** One command to a worker's session; rejects on an inspector error or when the worker does not answer in time. */
  private call(sessionId: string, method: string, params: object = {}, what = 'a worker'): Promise<WorkerReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(() => reject(new Error(`no answer to ${method} from ${what} in ${REPLY_TIMEOUT_MS} ms`))), REPLY_TIMEOUT_MS);
      const settle = (done: () => void) => {
        clearTimeout(timer);
        this.pending.delete(id);
        done();
      };
      this.pending.set(id, (r) => settle(() => (r.error ? reject(new Error(`${method}: ${r.error.message}`)) : resolve(r))));
      void this.session!.post('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params }) }).catch((err: unknown) =>
        settle(() => reject(err as Error)),
      );
    });
  }
}

/** Growth per unit between two readings, in bytes: the whole process's rss, and the kernels' heaps (summed) when both readings have them. */
export function growthPer(before: MemoryReading, after: MemoryReading, units: number): { rssBytes: number; kernelBytes?: number } {
  const kernel = (r: MemoryReading) => r.kernels.reduce((a, k) => a + k.heapUsed + k.external, 0);
  const withKernel = before.kernels.length > 0 && after.kernels.length > 0;
  return {
    rssBytes: (after.rss - before.rss) / units,
    ...(withKernel ? { kernelBytes: (kernel(after) - kernel(before)) / units } : {}),
  };
}
