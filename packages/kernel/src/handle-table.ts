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
  /**
   * Whose handle quota the entry counts against when it is not the table's
   * own domain: a grant is charged to the granter, so no domain can spend
   * another's quota by granting into its table (invariant 5).
   */
  readonly payer?: Account;
}

export class HandleTable<T> {
  private readonly slots: (HandleEntry<T> | undefined)[] = [];
  private readonly generations: number[] = [];
  /** Occupied slots, own entries and grants received. */
  private used = 0;

  constructor(private readonly account: Account) {}

  /**
   * Inserts an entry in the lowest free slot; null (EMFILE) when its payer's
   * handle quota is spent, or, for a grant, when taking a slot would leave
   * the table's own domain less room than its whole quota.
   */
  insert(entry: HandleEntry<T>): number | null {
    const payer = entry.payer ?? this.account;
    if (payer.chargedHandles >= Math.min(payer.limits.maxHandles, MAX_SLOTS)) return null;
    if (entry.payer) {
      const ownRoom = Math.max(0, Math.min(this.account.limits.maxHandles, MAX_SLOTS) - this.account.chargedHandles);
      if (this.used + 1 + ownRoom > MAX_SLOTS) return null;
    }
    let slot = this.slots.findIndex((s) => s === undefined);
    if (slot < 0) slot = this.slots.length;
    this.slots[slot] = entry;
    this.generations[slot] ??= 1;
    this.used++;
    if (entry.payer) entry.payer.grantedHandles++;
    else this.account.handles++;
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
    this.used--;
    if (entry.payer) entry.payer.grantedHandles--;
    else this.account.handles--;
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
