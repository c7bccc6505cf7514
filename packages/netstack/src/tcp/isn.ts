/**
 * Initial sequence numbers per RFC 6528: ISN = M + F(localip, localport,
 * remoteip, remoteport, secretkey). M is a timer ticking every 4
 * microseconds (RFC 9293 3.4.1's clock), so successive connections of one
 * four-tuple still move forward through the sequence space; F is a keyed hash
 * of the four-tuple, so an off-path attacker who sees its own connections'
 * ISNs learns nothing about another four-tuple's, nor about another host's
 * with a different key.
 *
 * F is HMAC-SHA-256 (node:crypto: computation, no I/O) truncated to its first
 * 32 bits, big-endian. RFC 6528 3 names MD5 as an example of F; any
 * cryptographic hash with a secret key will do. The caller supplies the key
 * (the kernel draws it once at boot, as Linux's net_secret). The ISN is
 * only as unpredictable as the key, so it must come from a CSPRNG; 16 bytes
 * (what lwIP's RFC 6528 implementation takes) is the least accepted here.
 */
import { createHmac } from 'node:crypto';
import type { Ipv4Address } from '../wire/address.js';

/** The shortest key accepted: 128 bits. */
export const ISN_MIN_KEY_BYTES = 16;

export interface FourTuple {
  localAddr: Ipv4Address;
  localPort: number;
  remoteAddr: Ipv4Address;
  remotePort: number;
}

/** M: the 4-microsecond timer at `now` (milliseconds), modulo 2^32. It wraps every 2^32 * 4 us, about 4.77 hours. */
export function isnClock(now: number): number {
  if (!Number.isFinite(now)) throw new RangeError(`now must be finite, got ${now}`);
  return Math.floor(now * 250) >>> 0; // 250 ticks of 4 us in a millisecond
}

export class IsnGenerator {
  private readonly key: Buffer;

  /** Copies `key`, so the caller may clear its own copy. */
  constructor(key: Uint8Array) {
    if (key.length < ISN_MIN_KEY_BYTES) throw new RangeError(`the ISN key must have at least ${ISN_MIN_KEY_BYTES} bytes, got ${key.length}`);
    this.key = Buffer.from(key);
  }

  /** F: the keyed hash of the four-tuple, 32 bits. */
  hash(t: FourTuple): number {
    const m = Buffer.alloc(12);
    m.writeUInt32BE(t.localAddr >>> 0, 0);
    m.writeUInt16BE(t.localPort, 4);
    m.writeUInt32BE(t.remoteAddr >>> 0, 6);
    m.writeUInt16BE(t.remotePort, 10);
    return createHmac('sha256', this.key).update(m).digest().readUInt32BE(0);
  }

  /** The ISN for a connection of `t` opened at `now` (milliseconds). */
  isn(t: FourTuple, now: number): number {
    return (isnClock(now) + this.hash(t)) >>> 0;
  }
}
