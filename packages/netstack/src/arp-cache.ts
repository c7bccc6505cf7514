/**
 * The ARP cache (RFC 826) with RFC 1122's timeouts (2.3.2.1): bindings
 * expire, unanswered requests are retried at most once per retry interval
 * and then given up, and packets wait for resolution in bounded queues.
 *
 * Sans-IO: it never sends anything. It says which requests to send and hands
 * back the packets to transmit or release; the caller owns the wire. Memory
 * is bounded whatever the network sends: bindings by maxEntries (the oldest
 * is evicted), waiting packets by maxPendingPerAddress and maxPendingTotal
 * (the newcomer is refused, counted as drop.arp.queueFull).
 */
import type { PacketBuffer } from './buffer.js';
import type { Counters } from './counters.js';
import type { Ipv4Address } from './wire/address.js';
import { IPV4_ANY, IPV4_BROADCAST } from './wire/address.js';
import type { MacAddress } from './wire/ethernet.js';
import { earlier } from './deadline.js';

export interface ArpOptions {
  /** How long a binding is trusted after it was last learned. */
  entryTtlMs: number;
  /** Time between requests for one address (RFC 1122: at most one a second). */
  retryMs: number;
  /** Requests sent again after the first before giving up: 1 + maxRetries in all. */
  maxRetries: number;
  maxEntries: number;
  maxPendingPerAddress: number;
  maxPendingTotal: number;
}

export const DEFAULT_ARP_OPTIONS: Readonly<ArpOptions> = Object.freeze({
  entryTtlMs: 60_000,
  retryMs: 1000,
  maxRetries: 3,
  maxEntries: 256,
  maxPendingPerAddress: 8,
  maxPendingTotal: 64,
});

export interface ArpEnqueueResult {
  /** False: the packet was refused and is still the caller's to release. */
  queued: boolean;
  /** True when a request for the address should go out now. */
  sendRequest: boolean;
}

export interface ArpPoll {
  /** Addresses to send a request for again, now. */
  requests: Ipv4Address[];
  /** Packets whose address never answered: the caller releases each (each appears once). */
  failed: PacketBuffer[];
  /** When `poll` must run again for a retry or a failure, or undefined when nothing is resolving. */
  deadline: number | undefined;
}

interface Entry {
  mac: MacAddress;
  expires: number;
}

interface Pending {
  packets: PacketBuffer[];
  /** Requests sent so far beyond the first. */
  retries: number;
  nextRequest: number;
}

const MAC_LIMIT = 2 ** 48;

export class ArpCache {
  private readonly options: ArpOptions;
  // Map insertion order is learning order: the front is the oldest binding
  // and, as every binding lives entryTtlMs, the first to expire.
  private readonly entries = new Map<Ipv4Address, Entry>();
  private readonly pending = new Map<Ipv4Address, Pending>();
  private pendingTotal = 0;

  /** Options not given (`{}` for all) take DEFAULT_ARP_OPTIONS. A nonsensical option is a configuration bug and throws. */
  constructor(
    options: Partial<ArpOptions>,
    private readonly counters: Counters,
  ) {
    this.options = { ...DEFAULT_ARP_OPTIONS, ...options };
    for (const [name, value] of Object.entries(this.options)) {
      const ok = name === 'maxRetries' ? Number.isInteger(value) && value >= 0 : value > 0;
      if (!ok) throw new RangeError(`ARP option ${name} cannot be ${value}`);
    }
  }

  /** Bindings held, expired ones not yet purged included (never more than maxEntries). */
  get entryCount(): number {
    return this.entries.size;
  }

  /** Packets waiting for resolution (never more than maxPendingTotal). */
  get pendingPackets(): number {
    return this.pendingTotal;
  }

  /** The binding for `ip`; an expired one is a miss (and is forgotten). */
  lookup(ip: Ipv4Address, now: number): MacAddress | undefined {
    const e = this.entries.get(ip);
    if (e && now < e.expires) {
      this.counters.add('arp.hit');
      return e.mac;
    }
    if (e) {
      this.entries.delete(ip);
      this.counters.add('arp.expired');
    }
    this.counters.add('arp.miss');
    return undefined;
  }

  /**
   * Records that `ip` is at `mac`, for entryTtlMs from `now`. Whether a
   * packet deserves this (a reply, a request addressed to us) is the
   * caller's choice. Returns the packets that were waiting for `ip`, oldest
   * first, now the caller's to send. A binding no host could own (a group
   * or zero MAC; the any, broadcast or a multicast IP) is refused and
   * counted, so a forged reply cannot make us broadcast unicast traffic.
   */
  update(ip: Ipv4Address, mac: MacAddress, now: number): PacketBuffer[] {
    if (!isUnicastMac(mac)) return this.refuse('drop.arp.badMac');
    if (!isHostAddress(ip)) return this.refuse('drop.arp.badAddress');
    // Deleted first so a refreshed binding moves to the back: eviction takes the least recently learned.
    const known = this.entries.delete(ip);
    if (!known && this.entries.size >= this.options.maxEntries) {
      const oldest = this.entries.keys().next().value!;
      this.entries.delete(oldest);
      this.counters.add('arp.evicted');
    }
    this.entries.set(ip, { mac, expires: now + this.options.entryTtlMs });
    this.counters.add('arp.update');
    const p = this.pending.get(ip);
    if (!p) return [];
    this.pending.delete(ip);
    this.pendingTotal -= p.packets.length;
    return p.packets;
  }

  /**
   * Parks `packet` until `ip` resolves; call it after lookup() missed. A full
   * queue refuses the newcomer (the caller releases it) rather than dropping
   * one already queued: either loses a packet, and this way the caller keeps
   * ownership clear. A refused packet for an address not yet resolving starts
   * no request; it can be tried again once the queues drain (at most
   * (1 + maxRetries) * retryMs later).
   */
  enqueue(ip: Ipv4Address, packet: PacketBuffer, now: number): ArpEnqueueResult {
    if (!isHostAddress(ip)) {
      this.counters.add('drop.arp.badAddress');
      return { queued: false, sendRequest: false };
    }
    const p = this.pending.get(ip);
    const full = this.pendingTotal >= this.options.maxPendingTotal || (p !== undefined && p.packets.length >= this.options.maxPendingPerAddress);
    if (full) {
      this.counters.add('drop.arp.queueFull');
      return { queued: false, sendRequest: false };
    }
    this.pendingTotal++;
    if (p) {
      p.packets.push(packet);
      return { queued: true, sendRequest: false };
    }
    this.pending.set(ip, { packets: [packet], retries: 0, nextRequest: now + this.options.retryMs });
    this.counters.add('arp.request');
    return { queued: true, sendRequest: true };
  }

  /**
   * Retries requests that are due and gives up on addresses that stayed
   * silent through maxRetries retries, returning their packets for release
   * (each counted as drop.arp.unresolved). Also forgets expired bindings,
   * which needs no deadline of its own: lookup() already treats them as misses.
   */
  poll(now: number): ArpPoll {
    for (const [ip, e] of this.entries) {
      if (now < e.expires) break; // the rest were learned later
      this.entries.delete(ip);
      this.counters.add('arp.expired');
    }
    const requests: Ipv4Address[] = [];
    const failed: PacketBuffer[] = [];
    let deadline: number | undefined;
    for (const [ip, p] of this.pending) {
      if (now >= p.nextRequest) {
        if (p.retries >= this.options.maxRetries) {
          this.pending.delete(ip);
          this.pendingTotal -= p.packets.length;
          failed.push(...p.packets);
          this.counters.add('drop.arp.unresolved', p.packets.length);
          continue;
        }
        p.retries++;
        // From now, not from the missed time, so a late poll never sends two requests within retryMs.
        p.nextRequest = now + this.options.retryMs;
        requests.push(ip);
        this.counters.add('arp.request');
      }
      deadline = earlier(deadline, p.nextRequest);
    }
    return { requests, failed, deadline };
  }

  /** Forgets everything (the interface went down) and returns every waiting packet for release. */
  clear(): PacketBuffer[] {
    const packets = [...this.pending.values()].flatMap((p) => p.packets);
    this.pending.clear();
    this.entries.clear();
    this.pendingTotal = 0;
    return packets;
  }

  private refuse(counter: string): PacketBuffer[] {
    this.counters.add(counter);
    return [];
  }
}

/** A MAC a single host can own: 48 bits, not zero, group bit (the first octet's lowest) clear. */
function isUnicastMac(mac: MacAddress): boolean {
  return Number.isInteger(mac) && mac > 0 && mac < MAC_LIMIT && (Math.floor(mac / 2 ** 40) & 1) === 0;
}

/** An address ARP can resolve: not 0.0.0.0, not the broadcast, not multicast (224/4, mapped to MACs without ARP). */
function isHostAddress(ip: Ipv4Address): boolean {
  return Number.isInteger(ip) && ip > IPV4_ANY && ip < IPV4_BROADCAST && ip >>> 28 !== 0xe;
}
