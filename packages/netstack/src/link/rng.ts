/**
 * The seeded generator of the link faults. It moved down into @moat/abi so
 * the syscall fuzzer draws from the same xoshiro128** without depending on
 * the stack; this re-export keeps the stack's imports and its sequences
 * unchanged (same code, same seeds, same draws).
 */
export { Xoshiro128 } from '@moat/abi';
