/**
 * After answering a blocked caller in its reply slot, the kernel pulls the
 * caller's port for a few microseconds (BUSY_POLL_MS): a call that arrives
 * meanwhile is served in the same drain, before the kernel goes back to its
 * event loop. An answer that went by post is not followed by a poll.
 */
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeRequest, SYS, type Reply } from '@moat/abi';
import { Kernel, type Domain } from '../src/index.js';

/** A domain whose port hands the kernel call 2 on its `arrivesAtPull`th pull, and (`withSlot`) a slot for the call it waits for. */
function caller(kernel: Kernel, withSlot: boolean, arrivesAtPull: number) {
  const slot = new Uint8Array(4096);
  const answered: number[] = [];
  let waitingFor = 0;
  let pulls = 0;
  let next: Uint8Array | undefined;
  const d: Domain = kernel.attach('caller', {
    post(frame, callId, inSlot) {
      answered.push((decodeFrame(inSlot ? frame.slice() : frame) as Reply)[0]);
      if (callId === waitingFor) waitingFor = 0;
    },
    slotFor: (callId) => (withSlot && callId === waitingFor ? slot : undefined),
    pull() {
      if (++pulls !== arrivesAtPull || !next) return;
      const frame = next;
      next = undefined;
      waitingFor = 2;
      kernel.submit(d, frame);
    },
  });
  return {
    answered,
    pulls: () => pulls,
    /** Call 1 now (blocked on it), call 2 to arrive at the chosen pull. */
    run() {
      next = encodeRequest(2, SYS.null, []);
      waitingFor = 1;
      kernel.submit(d, encodeRequest(1, SYS.null, []), true);
    },
  };
}

describe('busy polling after an answer in the reply slot', () => {
  it('serves a call that arrives while the kernel looks for it, in the same drain', () => {
    const kernel = new Kernel();
    const c = caller(kernel, true, 2);
    c.run();
    // The first pull follows the round, and finds nothing; the second is the busy poll's (it looks once at least), and finds call 2.
    expect(c.answered).toEqual([1, 2]);
    kernel.shutdown();
  });

  it('does not poll after an answer that went by post', () => {
    const kernel = new Kernel();
    const c = caller(kernel, false, 2);
    c.run();
    // One pull after the round, nothing there: the kernel waits for the port's next message.
    expect(c.answered).toEqual([1]);
    expect(c.pulls()).toBe(1);
    kernel.shutdown();
  });
});
