/** The Internet checksum (RFC 1071): ones'-complement sum of 16-bit words. */

/** Adds `data` to a running 32-bit sum; an odd last byte is padded with zero. */
export function sumWords(data: Uint8Array, sum = 0): number {
  const n = data.length & ~1;
  for (let i = 0; i < n; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (data.length & 1) sum += data[n]! << 8;
  return sum;
}

/** Folds a running sum into the 16-bit ones'-complement checksum. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function internetChecksum(data: Uint8Array): number {
  return finishChecksum(sumWords(data));
}

/** Sum of the IPv4 pseudo-header that UDP and TCP checksums cover (RFC 768, RFC 9293). */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}
