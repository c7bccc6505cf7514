/**
 * Faults the host injects into a domain through its kernel: at the domain's
 * Nth served call, or at a time. A 'kill' is the host's to carry out (the
 * kernel asks for it); the others are delivered as the reply to a call
 * (FAULT_ERRNO), as a signal is delivered on return from a system call, and
 * libc acts on them (throw, exit, hang, run out of memory).
 */
import type { DomainFaultKind } from '@moat/abi';

export type FaultKind = DomainFaultKind | 'kill';
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'throw', 'exit', 'hang', 'oom'];

/** What the host asks for: exactly one of atCall (1 = the first call the domain makes) or afterMs. */
export interface FaultRequest {
  kind: FaultKind;
  atCall?: number;
  afterMs?: number;
}

export interface PlannedFault {
  kind: FaultKind;
  /** Due at the domain's call with this serial number... */
  atCall?: number;
  /** ...or at this kernel time. */
  at?: number;
  /** How the report and the domain's error name it. */
  detail: string;
}

/** Checks a request and plans it; returns a reason instead when it is not well formed. */
export function planFault(req: FaultRequest, now: number): PlannedFault | string {
  if (!FAULT_KINDS.includes(req.kind)) return `unknown fault kind ${JSON.stringify(req.kind)} (known: ${FAULT_KINDS.join(', ')})`;
  const byCall = req.atCall !== undefined;
  const byTime = req.afterMs !== undefined;
  if (byCall === byTime) return 'give exactly one of atCall and afterMs';
  if (byCall && !(Number.isSafeInteger(req.atCall) && req.atCall! >= 1)) return `atCall must be an integer >= 1, got ${req.atCall}`;
  if (byTime && !(Number.isFinite(req.afterMs) && req.afterMs! >= 0)) return `afterMs must be a number >= 0, got ${req.afterMs}`;
  return byCall
    ? { kind: req.kind, atCall: req.atCall, detail: `fault: ${req.kind} at syscall ${req.atCall}` }
    : { kind: req.kind, at: now + req.afterMs!, detail: `fault: ${req.kind} after ${req.afterMs} ms` };
}
