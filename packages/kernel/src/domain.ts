/** The kernel's record of one protection domain: its channel, handle table, account and queue. */
import { Account, type Limits } from './account.js';
import { HandleTable } from './handle-table.js';
import type { KSocket } from './ksocket.js';

/** The kernel's end of a domain's channel: frames out, and the wake-up of a domain blocked in a sync call. */
export interface DomainPort {
  post(frame: Uint8Array): void;
}

export type CallOutcomes = Record<string, Record<string, number>>;

export class Domain {
  readonly account: Account;
  readonly table: HandleTable<KSocket>;
  /** Requests received and not yet served, in arrival order. */
  readonly queue: unknown[] = [];
  alive = true;
  /** Per syscall, how many calls ended with each result ('OK' or an errno name). */
  readonly calls: CallOutcomes = {};
  /** Frames that could not be decoded or did not fit a schema. */
  malformed = 0;
  /** Frame bytes it may still spend in the current turn (deficit round robin, see Kernel.drain). */
  deficit = 0;
  exitReason: string | undefined;

  constructor(
    readonly name: string,
    readonly port: DomainPort,
    limits: Limits,
  ) {
    this.account = new Account(limits);
    this.table = new HandleTable(this.account);
  }

  count(syscall: string, outcome: string): void {
    const perCall = (this.calls[syscall] ??= {});
    perCall[outcome] = (perCall[outcome] ?? 0) + 1;
  }
}
