/** The Internet checksum (RFC 1071): ones'-complement sum of 16-bit words. */

/** Below this many bytes the DataView costs more than it saves. */
const WIDE_MIN = 64;

/**
 * Adds `data[start, end)` to a running sum; an odd last byte is padded with
 * zero. The result stays below 2^32, as `finishChecksum` needs. A range, not
 * a subarray: the per-packet callers would each make a view to throw away.
 *
 * Long data is summed 32 bits at a time: 2^32 is 1 modulo 0xffff, as 2^16 is,
 * so adding big-endian 32-bit words and folding gives the ones'-complement
 * sum of the 16-bit words (RFC 1071 2(B)), in half the loads. The running sum
 * is a double: a 64 KiB segment adds at most 2^46, far from 2^53.
 */
export function sumWords(data: Uint8Array, sum = 0, start = 0, end = data.length): number {
  const len = end - start;
  let i = 0;
  if (len >= WIDE_MIN) {
    const view = new DataView(data.buffer, data.byteOffset + start, len);
    const n4 = len & ~3;
    for (; i < n4; i += 4) sum += view.getUint32(i);
  }
  const n2 = len & ~1;
  for (; i < n2; i += 2) sum += (data[start + i]! << 8) | data[start + i + 1]!;
  if (len & 1) sum += data[start + n2]! << 8;
  // Fold into 32 bits (exact in doubles; `>>>` would drop the high bits).
  while (sum > 0xffffffff) sum = (sum % 0x100000000) + Math.floor(sum / 0x100000000);
  return sum;
}

/** Folds a running sum into the 16-bit ones'-complement checksum. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The checksum of `data[start, end)`. */
export function internetChecksum(data: Uint8Array, start = 0, end = data.length): number {
  return finishChecksum(sumWords(data, 0, start, end));
}

/**
 * What Linux leaves in a TCP or UDP checksum field it offloads (loopback,
 * CHECKSUM_PARTIAL): the folded pseudo-header sum, not complemented. A
 * capture of such a packet shows it as Linux's own lo captures do.
 */
export function partialChecksum(pseudoSum: number): number {
  return ~finishChecksum(pseudoSum) & 0xffff;
}

/** Sum of the IPv4 pseudo-header that UDP and TCP checksums cover (RFC 768, RFC 9293). */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}
