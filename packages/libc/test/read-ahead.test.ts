/**
 * A blocking recv's reply is decoded where it arrived (the reply slot, shared
 * memory the kernel writes the next reply into) and copied out once: the
 * answer as one array, the read-ahead in pieces small enough for the
 * allocator to reuse. Nothing the program gets may alias the slot.
 */
import { describe, expect, it } from 'vitest';
import { AF_INET, decodeFrame, encodeReply, MSG_READAHEAD, SO_LINGER, SOCK_STREAM, SOL_SOCKET, SYS, type RecvfromResult } from '@moat/abi/core';
import { Channel, type FrameTransport } from '../src/channel.js';
import { READAHEAD_PIECE_BYTES, StreamBatching } from '../src/stream-batching.js';
import { syncSockets } from '../src/sockets.js';

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

  it('a close that drops read-ahead the program never read asks for SO_LINGER 1 first, so the peer is reset', () => {
    const calls: unknown[][] = [];
    let last: unknown[] = [];
    const transport: FrameTransport = {
      send: (frame) => void calls.push((last = decodeFrame(frame) as unknown[])),
      sendRaw: () => {},
      receiveSync: () => {
        const [id, sysno, ...args] = last as [number, number, ...unknown[]];
        if (sysno === SYS.socket) return encodeReply(id, 0, 3);
        // A recv answered with 10 bytes and 90 more read ahead.
        if (sysno === SYS.recvfrom) return encodeReply(id, 0, [pattern(100), '127.0.0.1', 5000, 0, Math.min(10, args[1] as number)]);
        return encodeReply(id, 0);
      },
      listen: () => {},
      unref: () => {},
      close: () => {},
    };
    const sys = syncSockets(new Channel(transport));
    const h = sys.socket(AF_INET, SOCK_STREAM);
    expect(sys.recv(h, 10).length).toBe(10);
    expect(sys.recv(h, 50).length).toBe(50); // from what was read ahead: no call
    const made = () => calls.map(([, sysno, ...args]) => [sysno, ...args]);
    expect(made().map(([sysno]) => sysno)).toEqual([SYS.socket, SYS.recvfrom]);
    sys.close(h); // 40 bytes never read
    expect(made().slice(2)).toEqual([
      [SYS.setsockopt, h, SOL_SOCKET, SO_LINGER, 1],
      [SYS.close, h],
    ]);
    // Read to the last byte, a close is a close.
    const h2 = sys.socket(AF_INET, SOCK_STREAM);
    sys.recv(h2, 10);
    sys.recv(h2, 1000);
    calls.length = 0;
    sys.close(h2);
    expect(made()).toEqual([[SYS.close, h2]]);
  });
});
