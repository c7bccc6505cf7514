import { describe, it, expect } from 'vitest';
import { finishChecksum, internetChecksum, pseudoHeaderSum, sumWords } from '../src/wire/checksum.js';
import { hex } from './hex.js';

describe('internet checksum (RFC 1071)', () => {
  // RFC 1071 section 3's worked example.
  const rfc1071 = hex('00 01 f2 03 f4 f5 f6 f7');

  it('sums the RFC 1071 example', () => {
    // 0x0001 + 0xf203 + 0xf4f5 + 0xf6f7 = 0x2ddf0; folded: 0xddf0 + 0x2 = 0xddf2.
    expect(sumWords(rfc1071)).toBe(0x2ddf0);
    expect(finishChecksum(0x2ddf0)).toBe(0x220d); // ~0xddf2
    expect(internetChecksum(rfc1071)).toBe(0x220d);
  });

  it('verifies to zero once the checksum is appended', () => {
    expect(internetChecksum(hex('00 01 f2 03 f4 f5 f6 f7 22 0d'))).toBe(0);
  });

  it('pads an odd last byte with zero', () => {
    expect(sumWords(hex('ab'))).toBe(0xab00);
    expect(internetChecksum(hex('00 01 f2'))).toBe(internetChecksum(hex('00 01 f2 00')));
  });

  it('continues a running sum', () => {
    expect(sumWords(hex('f4 f5 f6 f7'), sumWords(hex('00 01 f2 03')))).toBe(0x2ddf0);
  });

  it('is ~0 for empty data and folds repeatedly', () => {
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
    // 0x1fffe folds to 0xffff (ones'-complement zero); 0xffffffff needs two folds to get there.
    expect(finishChecksum(0xffff + 0xffff)).toBe(0);
    expect(finishChecksum(0xffffffff)).toBe(0);
  });

  it('sums the IPv4 pseudo-header', () => {
    // 192.168.0.1 -> 192.168.0.199, UDP, 10 bytes:
    // 0xc0a8 + 0x0001 + 0xc0a8 + 0x00c7 + 0x0011 + 0x000a = 0x18233
    expect(pseudoHeaderSum(0xc0a80001, 0xc0a800c7, 17, 10)).toBe(0x18233);
  });
});
