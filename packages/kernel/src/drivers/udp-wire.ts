/**
 * A wire made of UDP datagrams: each Ethernet frame travels as one datagram
 * to a peer address and port, so a simulated machine can join a real network
 * through a bridge (a TAP device and a small forwarder, or another Moat).
 */
import { createSocket, type Socket } from 'node:dgram';
import type { EthernetPort, Wire } from './ethernet-port.js';

export interface UdpWireConfig {
  /** Where this end listens. */
  local: { addr: string; port: number };
  /** Where frames are sent; datagrams from anyone else are dropped. */
  peer: { addr: string; port: number };
}

export class UdpWire implements Wire {
  private readonly socket: Socket;
  private readonly counters = { sent: 0, received: 0, foreign: 0, sendErrors: 0 };

  /** Resolves once bound. */
  static async open(config: UdpWireConfig, receiver: EthernetPort): Promise<UdpWire> {
    const wire = new UdpWire(config, receiver);
    await new Promise<void>((resolve, reject) => {
      wire.socket.once('error', reject);
      wire.socket.bind(config.local.port, config.local.addr, () => {
        wire.socket.off('error', reject);
        resolve();
      });
    });
    return wire;
  }

  private constructor(
    private readonly config: UdpWireConfig,
    receiver: EthernetPort,
  ) {
    this.socket = createSocket('udp4');
    this.socket.on('message', (msg, rinfo) => {
      if (rinfo.address !== config.peer.addr || rinfo.port !== config.peer.port) {
        this.counters.foreign++;
        return;
      }
      this.counters.received++;
      receiver.deliver(new Uint8Array(msg.buffer.slice(msg.byteOffset, msg.byteOffset + msg.byteLength)));
    });
    this.socket.on('error', () => this.counters.sendErrors++);
  }

  send(frame: Uint8Array): void {
    this.counters.sent++;
    // dgram sends later: it gets a copy, since the frame is a packet buffer the kernel clears and reuses.
    this.socket.send(frame.slice(), this.config.peer.port, this.config.peer.addr, (err) => {
      if (err) this.counters.sendErrors++;
    });
  }

  flush(): number | undefined {
    return undefined;
  }

  stats(): Record<string, number> {
    return { ...this.counters };
  }

  close(): void {
    this.socket.close();
  }
}
