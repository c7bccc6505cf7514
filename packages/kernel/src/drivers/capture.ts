/**
 * Capture taps: each writes one classic pcap file (Wireshark and tshark read
 * it) of the frames that cross one interface. Ethernet interfaces record both
 * directions; loopback records each packet once, as Linux's lo does.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { pcapFileHeader, pcapRecord, type Device, type PacketBuffer } from '@moat/netstack';

export class PcapFile {
  private readonly fd: number;
  records = 0;

  constructor(
    readonly path: string,
    linktype: number,
  ) {
    this.fd = openSync(path, 'w');
    writeSync(this.fd, pcapFileHeader(linktype));
  }

  /** Appends one frame, stamped with the wall-clock time (pcap wants seconds since the epoch). */
  write(frame: Uint8Array): void {
    writeSync(this.fd, pcapRecord(performance.timeOrigin + performance.now(), frame));
    this.records++;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Wraps an IP-medium device (loopback) so that `tap` sees every packet it is
 * given, once: a capture file, the event recorder, or both.
 */
export class TappedDevice implements Device {
  constructor(
    private readonly inner: Device,
    private readonly tap: (frame: Uint8Array) => void,
  ) {}

  get medium() {
    return this.inner.medium;
  }

  get mtu() {
    return this.inner.mtu;
  }

  get checksumOffload() {
    return this.inner.checksumOffload;
  }

  get gather() {
    return this.inner.gather;
  }

  transmit(frame: PacketBuffer): boolean {
    // A gathered packet (PacketBuffer.tail) is seen whole, as it would be on the wire.
    this.tap(frame.tail === undefined ? frame.bytes : joined(frame.bytes, frame.tail));
    return this.inner.transmit(frame);
  }

  receive(): PacketBuffer | undefined {
    return this.inner.receive();
  }
}

function joined(head: Uint8Array, tail: Uint8Array): Uint8Array {
  const whole = new Uint8Array(head.length + tail.length);
  whole.set(head);
  whole.set(tail, head.length);
  return whole;
}
