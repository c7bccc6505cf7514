/**
 * A blocking recv's reply is decoded where it arrived (the reply slot, shared
 * memory the kernel writes the next reply into) and copied out once: the
 * answer as one array, the read-ahead in pieces small enough for the
 * allocator to reuse. Nothing the program gets may alias the slot.
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeReply, MSG_READAHEAD, SYS, type RecvfromResult } from '@moat/abi/core';
import { Channel, type FrameTransport } from '../src/channel.js';
import { READAHEAD_PIECE_BYTES, StreamBatching } from '../src/stream-batching.js';

const pattern = (n: number) => new Uint8Array(n).map((_, i) => (i * 31 + 5) & 0xff);

/** A recv's reply as the kernel writes it into the slot: `answered` bytes asked for, the rest read ahead. */
function slotReply(total: number, answered: number): { slot: Uint8Array; raw: RecvfromResult } {
  const slot = new Uint8Array(new SharedArrayBuffer(total + 16)).subarray(16);
  slot.set(pattern(total));
  return { slot, raw: [slot, '127.0.0.1', 5000, 0, answered] };
}

describe('read-ahead from the reply slot', () => {
  it('hands out the answer and keeps the rest in ordinary memory, in pieces, served in order', () => {
    const batching = new StreamBatching({} as Channel);
    const total = 5 * READAHEAD_PIECE_BYTES + 1000;
    const { slot, raw } = slotReply(total, 4096);
    const [answer, addr, port] = batching.received('recv', [3, 4096, MSG_READAHEAD], raw) as RecvfromResult;
    slot.fill(0xee); // the slot's next use
    expect(answer.buffer).toBeInstanceOf(ArrayBuffer);
    expect([addr, port]).toEqual(['127.0.0.1', 5000]);
    const got = [answer];
    for (let r; (r = batching.serveRecv('recv', [3, 1 << 20, 0])); ) {
      expect(r[0].buffer).toBeInstanceOf(ArrayBuffer);
      expect(r[0].length).toBeLessThanOrEqual(READAHEAD_PIECE_BYTES);
      got.push(r[0]);
    }
    expect(Buffer.compare(Buffer.concat(got), pattern(total))).toBe(0);
    expect(got.length).toBe(1 + Math.ceil((total - 4096) / READAHEAD_PIECE_BYTES));
  });

  it('copies a recv without read-ahead out of the slot too, and leaves a reply in memory of its own as it is', () => {
    const batching = new StreamBatching({} as Channel);
    const { slot, raw } = slotReply(3000, 3000);
    const [answer] = batching.received('recvfrom', [4, 3000, 0], raw) as RecvfromResult;
    slot.fill(0);
    expect(Buffer.compare(answer, pattern(3000))).toBe(0);
    const own = pattern(10_000);
    const [mine] = batching.received('recv', [5, 100, MSG_READAHEAD], [own, '', 0, 0, 100]) as RecvfromResult;
    expect(mine.buffer).toBe(own.buffer); // no copy: the port or the pipe gave it in memory of its own
    expect(batching.serveRecv('recv', [5, 1 << 20, 0])![0].buffer).toBe(own.buffer);
  });

  it('the channel asks for a reply in place only when the caller adopts it', () => {
    const asked: boolean[] = [];
    const transport: FrameTransport = {
      send: (frame) => void (last = decodeFrame(frame) as [number, number]),
      sendRaw: () => {},
      receiveSync: (inPlace) => (asked.push(inPlace ?? false), encodeReply(last[0], 0, 7)),
      listen: () => {},
      unref: () => {},
      close: () => {},
    };
    let last: [number, number] = [0, 0];
    const channel = new Channel(transport);
    expect(channel.callSync(SYS.null, [])).toBe(7);
    expect(channel.callSync(SYS.null, [], (r) => (r as number) + 1)).toBe(8);
    expect(asked).toEqual([false, true]);
  });
});
