/**
 * What a DomainHandle needs of whatever runs a domain: its lifecycle events,
 * how it ended, and a way to stop it. A worker thread is one runner; a child
 * process (process-domain.ts) is the other.
 */
import type { Worker } from 'node:worker_threads';
import type { DomainEvent } from '@moat/libc';
import type { ProcessPermissions } from './process-permissions.js';

export type Isolation = 'worker' | 'process';

/** How a domain ended, as its runner saw it. */
export interface DomainEnd {
  exitCode?: number;
  /** The signal that ended a child process. */
  signal?: NodeJS.Signals;
  /** What the program threw (uncaught). */
  error?: string;
  /** Set when it ran out of JS heap: the runtime's message. */
  outOfMemory?: string;
  /** Set when the runner stopped it on its own, with the reason (a child that broke its pipe protocol). */
  stoppedBy?: string;
}

export interface DomainRunner {
  readonly isolation: Isolation;
  /** The child's process id (isolation 'process'). */
  readonly pid?: number;
  /** What the child may do under Node's permission model (isolation 'process', where Node has one). */
  readonly permissions?: ProcessPermissions;
  /** Calls `listener` with each lifecycle event; returns what unsubscribes it. */
  onEvent(listener: (e: DomainEvent) => void): () => void;
  /** Settles once, when the domain has ended and all it said has been heard. */
  readonly ended: Promise<DomainEnd>;
  /** Stops the domain at once; resolves when it has ended. */
  terminate(): Promise<void>;
}

export function workerRunner(worker: Worker): DomainRunner {
  const listeners = new Set<(e: DomainEvent) => void>();
  let error: { message: string; oom: boolean } | undefined;
  worker.on('message', (e: DomainEvent) => {
    for (const l of listeners) l(e);
  });
  worker.on('error', (err: Error & { code?: string }) => {
    error = { message: err?.message ?? String(err), oom: err?.code === 'ERR_WORKER_OUT_OF_MEMORY' };
  });
  const ended = new Promise<DomainEnd>((resolve) => {
    worker.once('exit', (exitCode) =>
      resolve({ exitCode, error: error && !error.oom ? error.message : undefined, outOfMemory: error?.oom ? error.message : undefined }),
    );
  });
  return {
    isolation: 'worker',
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    ended,
    async terminate() {
      await worker.terminate();
    },
  };
}
