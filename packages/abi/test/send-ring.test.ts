import { describe, expect, it } from 'vitest';
import {
  RING_BYTES,
  RING_DOORBELL,
  RING_HEAD,
  RING_OFFSET,
  RING_RECORD_MAX,
  RING_SIGNAL_BYTES,
  RING_STOPPED,
  RING_TAIL,
  SendRingReader,
  SendRingWriter,
  Xoshiro128,
} from '../src/index.js';

function ring() {
  const signal = new SharedArrayBuffer(RING_SIGNAL_BYTES);
  return { signal, writer: SendRingWriter.of(signal)!, reader: SendRingReader.of(signal)!, words: new Int32Array(signal, RING_OFFSET, 8) };
}

/** `n` bytes that say which record they are: its number, then a fill that changes with it. */
const bytes = (n: number, i: number) => {
  const out = new Uint8Array(n).fill((i * 37) & 0xff);
  new DataView(out.buffer).setUint32(0, i, true);
  return out.subarray(0, n);
};

describe('send ring', () => {
  it('has no ring in a signal too small for one', () => {
    expect(SendRingWriter.of(new SharedArrayBuffer(RING_SIGNAL_BYTES - 1))).toBeUndefined();
    expect(SendRingReader.of(new SharedArrayBuffer(64))).toBeUndefined();
  });

  it('carries records in order and intact across many wraps of the ring, with records of every size', () => {
    const { writer, reader } = ring();
    const rng = new Xoshiro128(3);
    const sent: [number, Uint8Array][] = [];
    let got = 0;
    for (let i = 0; i < 400; i++) {
      const data = bytes(4 + (rng.nextUint32() % (RING_RECORD_MAX - 3)), i);
      const handle = rng.nextUint32() % 5;
      // Full: the reader takes records until this one fits.
      while (!writer.tryWrite(handle, data)) {
        const r = reader.peek()!;
        expect(r.handle).toBe(sent[got]![0]);
        expect(Buffer.from(r.data).equals(sent[got]![1])).toBe(true);
        expect(r.data.byteOffset % 8).toBe(0); // data falls on a word (fast copies out of shared memory)
        reader.consume();
        got++;
      }
      sent.push([handle, data]);
    }
    for (let r = reader.peek(); r; r = reader.peek(), got++) {
      expect(Buffer.from(r.data).equals(sent[got]![1])).toBe(true);
      reader.consume();
    }
    expect(got).toBe(sent.length);
    expect(reader.broken).toBeUndefined();
    expect(writer.consumed(writer.position)).toBe(true);
  });

  it('refuses a record larger than RING_RECORD_MAX, and says when the ring is full', () => {
    const { writer } = ring();
    expect(() => writer.tryWrite(1, new Uint8Array(RING_RECORD_MAX + 1))).toThrow(RangeError);
    let n = 0;
    while (writer.tryWrite(1, new Uint8Array(RING_RECORD_MAX))) n++;
    expect(n).toBe(Math.floor(RING_BYTES / (RING_RECORD_MAX + 8)));
  });

  it('wakes a writer waiting for half the ring once the reader has taken that much, not before', () => {
    const { writer, reader } = ring();
    while (writer.tryWrite(7, new Uint8Array(RING_RECORD_MAX)));
    expect(writer.wakeAt(writer.halfFreeAt())).toBe(true); // it must sleep
    let wakes = 0;
    let taken = 0;
    while (reader.peek()) {
      if (reader.consume()) wakes++;
      taken++;
      if (wakes > 0) break;
    }
    expect(wakes).toBe(1);
    expect(taken).toBe(4); // 4 of the 7 records of 64 KiB + 8 free half of 512 KiB
    expect(writer.tryWrite(7, new Uint8Array(RING_RECORD_MAX))).toBe(true);
  });

  it('asks for one doorbell when it finds the ring empty, and takes the request back when a record came meanwhile', () => {
    const { writer, reader, words } = ring();
    expect(reader.peek()).toBeUndefined();
    expect(reader.askDoorbell()).toBe(true);
    expect(writer.tryWrite(1, new Uint8Array(10))).toBe(true);
    expect(writer.takeDoorbell()).toBe(true);
    expect(writer.takeDoorbell()).toBe(false);
    // A record written after the reader looked and before it asked: the reader reads on instead.
    reader.peek();
    reader.consume();
    writer.tryWrite(1, new Uint8Array(10));
    expect(reader.askDoorbell()).toBe(false);
    expect(Atomics.load(words, RING_DOORBELL)).toBe(0);
  });

  it('breaks, never throws, on headers a domain could write: each kind of junk', () => {
    const cases: [string, (w: Int32Array, records: Int32Array) => void][] = [
      ['tail past the ring', (w) => Atomics.store(w, RING_TAIL, RING_BYTES + 8)],
      ['tail behind head', (w) => Atomics.store(w, RING_TAIL, -8)],
      ['tail not on a word', (w) => Atomics.store(w, RING_TAIL, 12)],
      ['length 0', (w, r) => ((r[1] = 0), Atomics.store(w, RING_TAIL, 16))],
      ['length past the tail', (w, r) => ((r[1] = 100), Atomics.store(w, RING_TAIL, 16))],
      ['length past RING_RECORD_MAX', (w, r) => ((r[1] = RING_RECORD_MAX + 1), Atomics.store(w, RING_TAIL, RING_BYTES))],
      ['a pad record before the tail', (w, r) => ((r[1] = -1), Atomics.store(w, RING_TAIL, 16))],
      ['a negative length', (w, r) => ((r[1] = -5), Atomics.store(w, RING_TAIL, 16))],
    ];
    for (const [why, write] of cases) {
      const { signal, reader, words } = ring();
      write(words, new Int32Array(signal, RING_OFFSET + 32, 8));
      expect(reader.peek(), why).toBeUndefined();
      expect(reader.broken, why).toBeDefined();
      expect(Atomics.load(words, RING_STOPPED), why).toBe(2);
      expect(Atomics.load(words, RING_HEAD), why).toBe(0);
      expect(reader.peek(), why).toBeUndefined(); // and stays broken
    }
  });
});
