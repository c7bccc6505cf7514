import { describe, expect, it } from 'vitest';
import { copyBytes } from '../src/index.js';

describe('copyBytes', () => {
  const pattern = (n: number) => new Uint8Array(n).map((_, i) => (i * 29 + 7) & 0xff);

  it('copies into and out of shared memory, and between ordinary buffers, in every pair of phases', () => {
    for (const [targetShared, sourceShared] of [
      [true, false],
      [false, true],
      [true, true],
      [false, false],
    ]) {
      for (let targetPhase = 0; targetPhase < 8; targetPhase++) {
        for (let sourcePhase = 0; sourcePhase < 8; sourcePhase++) {
          for (const n of [0, 1, 7, 8, 9, 1000, 70_000]) {
            const from = new Uint8Array(sourceShared ? new SharedArrayBuffer(n + 16) : new ArrayBuffer(n + 16));
            from.set(pattern(n), sourcePhase);
            const source = from.subarray(sourcePhase, sourcePhase + n);
            const target = new Uint8Array(targetShared ? new SharedArrayBuffer(n + 32) : new ArrayBuffer(n + 32));
            copyBytes(target, 8 + targetPhase, source);
            expect(Buffer.from(target.subarray(8 + targetPhase, 8 + targetPhase + n)).equals(Buffer.from(pattern(n)))).toBe(true);
            // Nothing outside the target range is touched.
            expect(target.subarray(0, 8 + targetPhase).every((b) => b === 0)).toBe(true);
            expect(target.subarray(8 + targetPhase + n).every((b) => b === 0)).toBe(true);
          }
        }
      }
    }
  });
});
