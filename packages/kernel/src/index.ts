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

/**
 * The file to start a kernel worker from: worker.js with everything it
 * imports bundled into one module by the build (esbuild). Every machine
 * starts a worker, and loading the kernel's hundreds of modules one by one
 * took 220-260 ms of each start (TypeBox alone 125 ms), one file 35 ms.
 */
export const KERNEL_WORKER_URL = new URL('./worker.bundle.js', import.meta.url);
