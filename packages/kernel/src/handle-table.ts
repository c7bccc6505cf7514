/**
 * A domain's handle table. A handle is a small integer meaningful only in its
 * own table: the low bits pick a slot, the high bits carry the slot's
 * generation, so a handle to a closed object never reaches the object that
 * later reuses its slot (as Zephyr and Fuchsia handles do). Anything that is
 * not a live handle of this table, whatever its shape, is EBADF.
 */
import type { Account } from './account.js';

export const SLOT_BITS = 10;
export const MAX_SLOTS = 1 << SLOT_BITS;
const GENERATION_LIMIT = 1 << 20;

export interface HandleEntry<T> {
  readonly object: T;
  readonly rights: number;
  /** Set on entries created by a grant: who granted, so revoke can find them. */
  readonly grantedBy?: { domain: string; handle: number };
}

export class HandleTable<T> {
  private readonly slots: (HandleEntry<T> | undefined)[] = [];
  private readonly generations: number[] = [];

  constructor(private readonly account: Account) {}

  /** Inserts an entry in the lowest free slot; null when the domain's handle quota is spent (EMFILE). */
  insert(entry: HandleEntry<T>): number | null {
    if (this.account.handles >= Math.min(this.account.limits.maxHandles, MAX_SLOTS)) return null;
    let slot = this.slots.findIndex((s) => s === undefined);
    if (slot < 0) slot = this.slots.length;
    this.slots[slot] = entry;
    this.generations[slot] ??= 1;
    this.account.handles++;
    return this.generations[slot]! * MAX_SLOTS + slot;
  }

  lookup(handle: unknown): HandleEntry<T> | undefined {
    const slot = this.slotOf(handle);
    return slot === undefined ? undefined : this.slots[slot];
  }

  /** Removes a live entry and ages its slot; returns it, or undefined for a dead handle. */
  remove(handle: unknown): HandleEntry<T> | undefined {
    const slot = this.slotOf(handle);
    if (slot === undefined) return undefined;
    const entry = this.slots[slot]!;
    this.slots[slot] = undefined;
    this.generations[slot] = (this.generations[slot]! % (GENERATION_LIMIT - 1)) + 1;
    this.account.handles--;
    return entry;
  }

  /** Every live [handle, entry]. */
  *entries(): IterableIterator<[number, HandleEntry<T>]> {
    for (let slot = 0; slot < this.slots.length; slot++) {
      const entry = this.slots[slot];
      if (entry) yield [this.generations[slot]! * MAX_SLOTS + slot, entry];
    }
  }

  private slotOf(handle: unknown): number | undefined {
    if (typeof handle !== 'number' || !Number.isSafeInteger(handle) || handle < MAX_SLOTS) return undefined;
    const slot = handle % MAX_SLOTS;
    const generation = Math.floor(handle / MAX_SLOTS);
    if (this.slots[slot] === undefined || this.generations[slot] !== generation) return undefined;
    return slot;
  }
}
