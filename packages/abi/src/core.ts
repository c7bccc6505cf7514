/**
 * `@moat/abi/core`: what a domain needs (errno, constants, syscall numbers,
 * the frame codec and the channel's signal layout), without the argument
 * schemas and their library, which only the kernel and the fuzzer use.
 * Loading TypeBox took about 125 ms of a domain's 210 ms start-up.
 */
export * from './errno.js';
export * from './constants.js';
export * from './numbers.js';
export * from './codec.js';
export * from './copy.js';
export * from './send-ring.js';
export type { AcceptResult, DomainAccounting, GetsocknameResult, RecvfromResult, SockAddr } from './syscalls.js';
