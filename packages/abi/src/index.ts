export * from './errno.js';
export * from './constants.js';
export * from './syscalls.js';
export * from './codec.js';
export * from './send-ring.js';
export * from './validate.js';
export * from './rng.js';
export * from './fuzz.js';
