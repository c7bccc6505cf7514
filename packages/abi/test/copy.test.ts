import { describe, expect, it } from 'vitest';
import { copyBytes, ownCopy } from '../src/index.js';

describe('copyBytes', () => {
  const bytes = new Uint8Array(70_000).map((_, i) => (i * 29 + 7) & 0xff);
  const buffer = (shared: boolean, n: number) => (shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n));

  it('copies into and out of shared memory, and between ordinary buffers, in every pair of phases', () => {
    for (const [targetShared, sourceShared] of [
      [true, false],
      [false, true],
      [true, true],
      [false, false],
    ] as const) {
      // Around the lengths from which a copy goes by memcpy (256 unaligned, 2048 any).
      for (const n of [0, 1, 7, 8, 9, 255, 256, 1000, 2047, 2048, 70_000]) {
        const data = bytes.subarray(0, n);
        const from = new Uint8Array(buffer(sourceShared, n + 16));
        const target = new Uint8Array(buffer(targetShared, n + 32));
        for (let sourcePhase = 0; sourcePhase < 8; sourcePhase++) {
          from.set(data, sourcePhase);
          const source = from.subarray(sourcePhase, sourcePhase + n);
          for (let targetPhase = 0; targetPhase < 8; targetPhase++) {
            target.fill(0);
            copyBytes(target, 8 + targetPhase, source);
            expect(Buffer.compare(target.subarray(8 + targetPhase, 8 + targetPhase + n), data)).toBe(0);
            // Nothing outside the target range is touched.
            expect(target.subarray(0, 8 + targetPhase).every((b) => b === 0)).toBe(true);
            expect(target.subarray(8 + targetPhase + n).every((b) => b === 0)).toBe(true);
          }
        }
      }
    }
  });

  it('refuses a copy that does not fit, as set does, by either path', () => {
    for (const n of [100, 4096]) {
      const target = new Uint8Array(new SharedArrayBuffer(n + 8));
      expect(() => copyBytes(target, 9, bytes.subarray(0, n))).toThrow(RangeError);
      expect(target.every((b) => b === 0)).toBe(true);
    }
  });

  it('ownCopy gives ordinary memory of its own, whatever the source', () => {
    for (const n of [0, 10, 300, 70_000]) {
      const shared = new Uint8Array(new SharedArrayBuffer(n + 3)).subarray(3);
      shared.set(bytes.subarray(0, n));
      const copy = ownCopy(shared);
      expect(copy.buffer).toBeInstanceOf(ArrayBuffer);
      expect(Buffer.compare(copy, bytes.subarray(0, n))).toBe(0);
      shared.fill(1);
      expect(Buffer.compare(copy, bytes.subarray(0, n))).toBe(0);
      // A Buffer's own slice() would be a view of it.
      const buffer = Buffer.from(bytes.subarray(0, n));
      const ofBuffer = ownCopy(buffer);
      buffer.fill(2);
      expect(Buffer.compare(ofBuffer, bytes.subarray(0, n))).toBe(0);
    }
  });
});
