/** The kernel's record of one protection domain: its channel, handle table, account and queue. */
import { Account, type Limits } from './account.js';
import { HandleTable } from './handle-table.js';
import type { PlannedFault } from './faults.js';
import type { KSocket } from './ksocket.js';
import type { SendRingReader } from '@moat/abi';
import type { Blocked } from './outcome.js';

/** The kernel's end of a domain's channel: frames out, and the wake-up of a domain blocked in a sync call. */
export interface DomainPort {
  /**
   * `callId`: the call it answers, so that a domain blocked on that call can be
   * given it in its reply slot. `inSlot`: the frame was written in the slot
   * slotFor gave for that call (a view of it), and is in place already.
   */
  post(frame: Uint8Array, callId?: number, inSlot?: boolean): void;
  /**
   * Posts the reply to `callId` on the channel (not in the slot), as post
   * posts encodeReply's frame, encoding it itself (optional: for a port that
   * can post one without making that frame first; see postReply in @moat/abi).
   */
  postReply?(callId: number, errno: number, result: unknown): void;
  /**
   * The reply slot of a domain blocked on call `callId`, claimed for its
   * reply, or undefined (no slot, or it waits for another call). The kernel
   * encodes the reply straight into it and posts that view, which saves the
   * reply a buffer of its own. Optional: without it every reply is a frame.
   */
  slotFor?(callId: number): Uint8Array | undefined;
  /** The domain's send ring (a worker domain's, outside lockstep): stream writes it queued without a call. */
  readonly ring?: SendRingReader;
  /** Bumps the domain's wake-up word, as a reply does (a domain waiting for room in its ring). */
  wake?(): void;
  /**
   * Hands the kernel (through submit) the requests that have arrived but not
   * been delivered yet, synchronously: the kernel calls it between rounds of
   * a long drain, so a newcomer's call does not wait behind a flooder's whole
   * queue. Optional: without it requests arrive between drains only.
   */
  pull?(): void;
}

export type CallOutcomes = Record<string, Record<string, number>>;

import type { DomainRest } from './lockstep.js';

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
  /** Socket data copied in from it and out to it, in bytes. */
  readonly bytes = { sent: 0, received: 0 };
  /** Sends that came as send ring records, and bytes handed over as read-ahead (both inside `bytes`). */
  readonly batched = { ringSends: 0, readAheadBytes: 0 };
  /** Frame bytes it may still spend in the current turn (deficit round robin, see Kernel.drain). */
  deficit = 0;
  exitReason: string | undefined;
  /** Requests taken off its queue so far: the serial number a fault's atCall counts in. */
  served = 0;
  /** Faults planned for it, not yet delivered. */
  readonly faults: PlannedFault[] = [];
  /** Kill it when it runs this long with no call in the kernel (a hang), from its first answered call; undefined for no watchdog. */
  watchdogMs: number | undefined;
  /** Since when it has had no call queued or parked (running, as far as the kernel can tell). */
  runningSince: number | undefined;
  /** It was given a 'hang' fault: it will make no call again (lockstep does not wait for it). */
  hung = false;
  /** Lockstep: the host was asked to kill it; its calls are not served and the kernel waits for its detach. */
  dying = false;
  /** Lockstep: what its channel says of its waiting, for a domain whose channel says (a worker's). */
  rest: DomainRest | undefined;
  /** In the kernel's list of domains with work (its queue, or its send ring). */
  scheduled = false;
  /**
   * The kernel found its send ring empty and asked for a doorbell with the
   * next record: the ring is not looked at again until that doorbell comes
   * (the domain rings whenever it finds the request), which saves a domain
   * that makes calls but sends nothing by the ring the ring's atomics on
   * every turn.
   */
  ringIdle = false;
  /** The send ring's first record waits for room in its socket's send buffer: the rest of the ring waits behind it. */
  ringStuck: { blocked: Blocked; handle: number; length: number; start: number } | undefined;
  /**
   * Errors that ring records met, by handle: the socket's pending error,
   * which the next send or recv on the handle returns (close clears it), as
   * Linux reports an asynchronous error on a socket.
   */
  readonly ringErrors = new Map<number, number>();
  /** Its send ring broke (counted once among its malformed frames). */
  ringBrokenSeen = false;

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
