/**
 * Work queued for the next turn, taken a turn at a time: the kernel's
 * runnable domains, the TCP layer's connections with something to send.
 *
 * Two arrays take turns, with counts, and neither is ever emptied by splice
 * or a length of 0 (in V8 either is a call into the runtime that gives up
 * the array's storage, which the next push allocates again: about 1 µs in
 * an idle kernel's call), nor made by spreading a Set.
 */
export class TurnQueue<T> {
  private queued: (T | undefined)[] = [];
  private count = 0;
  private spare: (T | undefined)[] = [];
  private spareCount = 0;
  /** The turn taken last: `turn[0 .. take())`, the caller's until the next take. */
  turn: readonly (T | undefined)[] = this.spare;

  /** Items waiting for the next turn. */
  get length(): number {
    return this.count;
  }

  push(item: T): void {
    this.queued[this.count++] = item;
  }

  /**
   * Starts a turn: returns how many items it has, which are `turn[0 .. n)`.
   * What is pushed from now on waits for the turn after. The turn before
   * this one lets go of its items here, so none is held past its turn.
   */
  take(): number {
    const n = this.count;
    const taken = this.queued;
    const next = this.spare;
    for (let i = 0; i < this.spareCount; i++) next[i] = undefined;
    this.queued = next;
    this.count = 0;
    this.spare = this.turn = taken;
    this.spareCount = n;
    return n;
  }
}
