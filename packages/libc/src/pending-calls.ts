/**
 * The promise calls of a channel awaiting their replies, by call id.
 *
 * Call ids count up, so the calls pending at once have ids close together:
 * each goes in the slot of a small table its id falls in (id mod SLOTS),
 * and only a call whose slot is taken by one SLOTS or more calls older goes
 * to a Map. A Map alone cost every round trip of a program that awaits each
 * call before the next: V8 shrinks a Map emptied by a delete, or rehashes one
 * full of deleted entries, by a call into its runtime that allocates a new
 * table (0.1-0.2 µs of a null call).
 */
const SLOTS = 256; // a power of two, above the depth of any ordinary program's calls in flight

export class PendingCalls<T extends object> {
  private readonly ids = new Float64Array(SLOTS); // a call id is up to 2^32 - 1: not an Int32
  private readonly slots: (T | undefined)[] = new Array<T | undefined>(SLOTS).fill(undefined);
  private readonly overflow = new Map<number, T>();
  private inSlots = 0;

  get size(): number {
    return this.inSlots + this.overflow.size;
  }

  add(id: number, call: T): void {
    const i = id & (SLOTS - 1);
    if (this.slots[i] === undefined) {
      this.slots[i] = call;
      this.ids[i] = id;
      this.inSlots++;
    } else this.overflow.set(id, call);
  }

  has(id: number): boolean {
    const i = id & (SLOTS - 1);
    return (this.slots[i] !== undefined && this.ids[i] === id) || (this.overflow.size > 0 && this.overflow.has(id));
  }

  /** Removes and returns the call `id`, or undefined when none is pending under it. */
  take(id: number): T | undefined {
    const i = id & (SLOTS - 1);
    const call = this.slots[i];
    if (call !== undefined && this.ids[i] === id) {
      this.slots[i] = undefined;
      this.inSlots--;
      return call;
    }
    if (this.overflow.size === 0) return undefined;
    const other = this.overflow.get(id);
    if (other !== undefined) this.overflow.delete(id);
    return other;
  }

  /** Removes and returns every pending call, in the order of their ids. */
  takeAll(): T[] {
    const all: [number, T][] = [...this.overflow];
    for (let i = 0; i < SLOTS; i++) {
      const call = this.slots[i];
      if (call !== undefined) all.push([this.ids[i]!, call]);
      this.slots[i] = undefined;
    }
    this.overflow.clear();
    this.inSlots = 0;
    return all.sort((a, b) => a[0] - b[0]).map(([, call]) => call);
  }
}
