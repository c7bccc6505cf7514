/**
 * A datagram socket inside the stack (UDP, or an ICMP echo "ping" socket):
 * its binding, its optional peer, and the bounded FIFO that the stack's
 * receive path fills and the socket layer drains (the FIFO of the design: no
 * callback into user code ever runs).
 */
import type { Allocate, PacketBuffer } from './buffer.js';
import type { Ipv4Address } from './wire/address.js';

export interface Endpoint {
  addr: Ipv4Address;
  port: number;
}

export interface ReceivedDatagram {
  buffer: PacketBuffer;
  from: Endpoint;
}

/** Default receive-queue limit, in payload bytes (Linux's default rmem is 208 KiB). */
export const DEFAULT_RCVBUF = 212992;

/** The asynchronous errors an ICMP message can leave for a connected socket. */
export type SocketError = 'ECONNREFUSED' | 'ENETUNREACH' | 'EHOSTUNREACH';

export class DatagramSocket {
  /** Local binding; null until bound (explicitly, or implicitly by connect/send). */
  local: Endpoint | null = null;
  /** Peer of a connected socket: only its datagrams are received, and send() goes there. */
  remote: Endpoint | null = null;
  rcvbuf = DEFAULT_RCVBUF;
  /** Set DF and refuse (EMSGSIZE) what does not fit the MTU, instead of fragmenting (IP_PMTUDISC_DO). */
  dontFragment = false;
  /** A pending asynchronous error (from ICMP), reported once by the next call. */
  pendingError: SocketError | null = null;

  private readonly queue: ReceivedDatagram[] = [];
  private queuedBytes = 0;
  readonly stats = { received: 0, dropsQueueFull: 0, dropsNoBuffer: 0, sent: 0 };

  /** `allocate` charges receive buffers to the socket's owner. */
  constructor(
    readonly kind: 'udp' | 'ping',
    readonly allocate: Allocate,
  ) {}

  get queuedDatagrams(): number {
    return this.queue.length;
  }

  get bytesQueued(): number {
    return this.queuedBytes;
  }

  /** Copies a payload into a buffer of the owner's and queues it; false when it was dropped. */
  enqueue(payload: Uint8Array, from: Endpoint): 'queued' | 'full' | 'nobuf' {
    if (this.queuedBytes + payload.length > this.rcvbuf) {
      this.stats.dropsQueueFull++;
      return 'full';
    }
    const buffer = this.allocate(payload.length);
    if (!buffer) {
      this.stats.dropsNoBuffer++;
      return 'nobuf';
    }
    buffer.bytes.set(payload);
    this.queue.push({ buffer, from });
    this.queuedBytes += payload.length;
    this.stats.received++;
    return 'queued';
  }

  peek(): ReceivedDatagram | undefined {
    return this.queue[0];
  }

  /** Removes the head datagram; the caller copies it out and releases its buffer. */
  dequeue(): ReceivedDatagram | undefined {
    const head = this.queue.shift();
    if (head) this.queuedBytes -= head.buffer.bytes.length;
    return head;
  }

  /** Releases every queued buffer (on close). */
  clear(): void {
    for (const d of this.queue) d.buffer.release();
    this.queue.length = 0;
    this.queuedBytes = 0;
  }
}
