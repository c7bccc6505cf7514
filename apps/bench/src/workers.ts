/** Starting the baselines' plain worker threads and hearing from them. */
import { Worker, type TransferListItem } from 'node:worker_threads';

export function startWorker(file: string, workerData: unknown, transferList: TransferListItem[] = []): Worker {
  return new Worker(new URL(`./baselines/${file}.js`, import.meta.url), { workerData, transferList });
}

/** The worker's next message; rejects if it fails or ends first. */
export function nextMessage<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const settle = (done: () => void) => {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      done();
    };
    const onMessage = (m: T) => settle(() => resolve(m));
    const onError = (err: Error) => settle(() => reject(err));
    const onExit = (code: number) => settle(() => reject(new Error(`worker ended (exit ${code}) before answering`)));
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
  });
}

/** Resolves when every worker has ended on its own (each closes its ports and timers when done). */
export function ended(...workers: Worker[]): Promise<unknown> {
  return Promise.all(workers.map((w) => new Promise((resolve) => (w.threadId === -1 ? resolve(undefined) : w.once('exit', resolve)))));
}

/**
 * A worker that posts `{ ready: n }` notes before its one result: `ready(n)`
 * resolves once it has said so, `result` with the first other message.
 */
export function readyAndResult<T>(worker: Worker): { ready(n: number): Promise<void>; result: Promise<T> } {
  const said = new Set<number>();
  const waiting = new Map<number, () => void>();
  const result = new Promise<T>((resolve, reject) => {
    worker.on('message', (m: unknown) => {
      const n = (m as { ready?: unknown } | null)?.ready;
      if (typeof n !== 'number') return resolve(m as T);
      said.add(n);
      waiting.get(n)?.();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker ended (exit ${code}) before answering`)));
  });
  return {
    ready: (n) => (said.has(n) ? Promise.resolve() : Promise.race([new Promise<void>((resolve) => waiting.set(n, resolve)), result.then(() => undefined)])),
    result,
  };
}
