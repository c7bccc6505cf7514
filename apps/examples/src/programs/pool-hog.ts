/**
 * The pool hog: a neighbour that takes every packet buffer it can get. It
 * opens many datagram sockets and sends itself datagrams without reading
 * them, large ones first and then smaller ones to fill what is left, until
 * the kernel refuses with ENOBUFS (the pool is smaller than its quota, so it
 * is the pool that runs out). Then it keeps pressing: every few milliseconds
 * it fills again whatever came free, so nothing stays free for long. It runs
 * until the scenario ends and kills it.
 */
import { AF_INET, defineProgram, errnoOf, Errno, MSG_DONTWAIT, SO_RCVBUF, SOCK_DGRAM, SOL_SOCKET } from '@moat/libc';
import { sleep } from './library-kit.js';

export interface PoolHogArgs {
  sockets: number;
  /** Milliseconds between fills once the pool is exhausted. */
  pressMs: number;
}

export interface PoolHogState {
  phase: 'filling' | 'exhausted';
  /** Buffer bytes and buffers it held after its last fill. */
  heldBytes: number;
  heldBuffers: number;
  /** Its sends refused with ENOBUFS, in all. */
  enobufs: number;
  fills: number;
}

/** Payload sizes, large to small: each fills the room the larger left. 200 bytes is a 256-byte buffer, the smallest. */
const SIZES = [16000, 2000, 200];

export default defineProgram<PoolHogArgs>(({ sys, args, log, publish }) => {
  const sinks = Array.from({ length: args.sockets }, () => {
    const s = sys.socket(AF_INET, SOCK_DGRAM);
    sys.bind(s, { addr: '127.0.0.1', port: 0 });
    sys.setsockopt(s, SOL_SOCKET, SO_RCVBUF, 1 << 20);
    return sys.getsockname(s);
  });
  const sender = sys.socket(AF_INET, SOCK_DGRAM);
  const state: PoolHogState = { phase: 'filling', heldBytes: 0, heldBuffers: 0, enobufs: 0, fills: 0 };
  let next = 0;
  /** Sends datagrams of each size until refused, or until what it holds stops growing (the receive side is full). */
  const fill = () => {
    state.fills++;
    for (const size of SIZES) {
      const data = new Uint8Array(size).fill(0x55);
      let held = sys.stats().bufferBytes;
      for (let i = 1; i <= 4096; i++) {
        const errno = errnoOf(() => sys.sendto(sender, data, sinks[next++ % sinks.length]!, MSG_DONTWAIT));
        if (errno === Errno.ENOBUFS) {
          state.enobufs++;
          break;
        }
        if (errno !== 0) throw new Error(`send refused with errno ${errno}`);
        if (i % 8 === 0) {
          const now = sys.stats().bufferBytes;
          if (now <= held) break; // what it sends is dropped on arrival: nothing left to take with this size
          held = now;
        }
      }
    }
    const s = sys.stats();
    state.heldBytes = s.bufferBytes;
    state.heldBuffers = s.buffers;
  };
  fill();
  state.phase = 'exhausted';
  publish({ ...state });
  log(`exhausted: holding ${state.heldBuffers} buffers (${state.heldBytes} B) in ${args.sockets} sockets`);
  for (;;) {
    sleep(sys, args.pressMs);
    fill();
    publish({ ...state });
  }
});
