export * from './account.js';
export * from './buffer-pool.js';
export * from './control.js';
export * from './domain.js';
export * from './faults.js';
export * from './handle-table.js';
export * from './kernel.js';
export * from './lockstep.js';
export * from './ksocket.js';
export * from './outcome.js';
export * from './recorder.js';

/** The file to start a kernel worker from. */
export const KERNEL_WORKER_URL = new URL('./worker.js', import.meta.url);
