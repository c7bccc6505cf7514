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
