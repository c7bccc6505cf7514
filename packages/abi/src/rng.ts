/**
 * A small seeded PRNG: xoshiro128** (Blackman and Vigna,
 * https://prng.di.unimi.it/xoshiro128starstar.c), used for the stack's fault
 * injection and the syscall fuzzer. It lives in the ABI, the package every
 * other depends on, so both draw from the same generator. Written out here
 * rather than taken from a library so the sequence for a seed can never change
 * under a dependency upgrade: a failure must replay from its seed for as long
 * as the seed is kept.
 */

/** MurmurHash3's 32-bit finaliser: a bijection that spreads every input bit over the output. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * `seed` is any safe integer (negative ones too). Its low and high 32 bits
   * go through a bijective mix, so distinct seeds give distinct states and
   * nearby seeds (1, 2, 3...) give unrelated sequences.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    this.s0 = fmix32(lo ^ 0x9e3779b9);
    this.s1 = fmix32(hi ^ 0x7f4a7c15);
    // fmix32 maps only 0 to 0, so s0 and s2 are zero for different values of lo: never both,
    // and the all-zero state (a fixed point of the generator) is unreachable.
    this.s2 = fmix32(lo ^ 0x6a09e667);
    this.s3 = fmix32(hi ^ 0xbb67ae85);
  }

  /** Starts from a raw state, for known-answer tests against the reference C code. */
  static fromState(s0: number, s1: number, s2: number, s3: number): Xoshiro128 {
    if ((s0 | s1 | s2 | s3) === 0) throw new RangeError('the all-zero state is a fixed point');
    const rng = new Xoshiro128(0);
    rng.s0 = s0 >>> 0;
    rng.s1 = s1 >>> 0;
    rng.s2 = s2 >>> 0;
    rng.s3 = s3 >>> 0;
    return rng;
  }

  /** The next unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1), so `nextFloat() < p` is true with probability p, never for 0 and always for 1. */
  nextFloat(): number {
    return this.nextUint32() / 2 ** 32;
  }
}
